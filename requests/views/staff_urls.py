from django.contrib.auth import views as auth_views
from django.urls import path

from requests.views import assign, dashboard, queue, staff, users

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="staff/login.html", redirect_authenticated_user=True
        ),
        name="staff-login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="staff-logout"),
    path("", queue.queue, name="staff-queue"),
    path("requests/<str:reference>/", staff.request_detail, name="staff-request"),
    path("requests/<str:reference>/assign/", assign.assign, name="staff-request-assign"),
    path("mail/", staff.mail, name="staff-mail"),
    path("users/", users.users, name="staff-users"),
    path("dashboard/", dashboard.dashboard_page, name="staff-dashboard"),
]
