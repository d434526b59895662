from django.http import HttpResponse


def file_request(request):
    return HttpResponse("todo")


def filed(request, reference):
    return HttpResponse("todo")


def verify_code(request, reference):
    return HttpResponse("todo")


def verify_link(request, reference, token):
    return HttpResponse("todo")


def status(request, reference, token):
    return HttpResponse("todo")
