from django.http import HttpResponse


def queue(request):
    return HttpResponse("todo")


def request_detail(request, reference):
    return HttpResponse("todo")
