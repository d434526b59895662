from django.contrib.auth import views as auth_views
from django.urls import path

from requests.views import (
    assign,
    bulk,
    dashboard,
    queue,
    request_page,
    staff,
    stores_pages,
    two_factor,
    users,
)

urlpatterns = [
    path("login/", two_factor.StaffLoginView.as_view(), name="staff-login"),
    path("login/code/", two_factor.login_code, name="staff-login-code"),
    path("two-factor/", two_factor.enrol, name="staff-two-factor"),
    path("logout/", auth_views.LogoutView.as_view(), name="staff-logout"),
    path("", queue.queue, name="staff-queue"),
    path("bulk-reject/", bulk.bulk_reject, name="staff-bulk-reject"),
    path("requests/<str:reference>/", request_page.request_detail, name="staff-request"),
    path("requests/<str:reference>/assign/", assign.assign, name="staff-request-assign"),
    path("mail/", staff.mail, name="staff-mail"),
    path("users/", users.users, name="staff-users"),
    path("language/", users.own_language, name="staff-language"),
    path("dashboard/", dashboard.dashboard_page, name="staff-dashboard"),
    path("stores/", stores_pages.store_list, name="staff-stores"),
    path("stores/<str:name>/", stores_pages.store_detail, name="staff-store"),
    path("stores/<str:name>/map/", stores_pages.store_map_save, name="staff-store-map"),
    path("stores/<str:name>/check/", stores_pages.store_check_run, name="staff-store-check"),
    path("stores/<str:name>/enabled/", stores_pages.store_enabled, name="staff-store-enabled"),
    path("stores/<str:name>/delete/", stores_pages.store_remove, name="staff-store-delete"),
]
