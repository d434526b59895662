from django.urls import path

from requests.api import erasure, packages, public, staff, stores

urlpatterns = [
    path("requests/", public.FileRequestView.as_view(), name="api-request-file"),
    path(
        "requests/<str:reference>/verify/",
        public.VerifyRequestView.as_view(),
        name="api-request-verify",
    ),
    path(
        "requests/<str:reference>/resend/",
        public.ResendCodeView.as_view(),
        name="api-request-resend",
    ),
    path(
        "requests/<str:reference>/verify-phone/",
        public.VerifyPhoneView.as_view(),
        name="api-request-verify-phone",
    ),
    path("staff/requests/", staff.StaffRequestListView.as_view(), name="api-staff-requests"),
    path(
        "staff/requests/<str:reference>/",
        staff.StaffRequestDetailView.as_view(),
        name="api-staff-request",
    ),
    path(
        "staff/requests/<str:reference>/preview/",
        staff.RequestPreviewView.as_view(),
        name="api-staff-request-preview",
    ),
    path("staff/requests/<str:reference>/approve/", staff.ApproveView.as_view()),
    path(
        "staff/requests/<str:reference>/confirm-identity/",
        staff.ConfirmIdentityView.as_view(),
        name="api-staff-confirm-identity",
    ),
    path("staff/requests/<str:reference>/reject/", staff.RejectView.as_view()),
    path("staff/requests/<str:reference>/extend/", staff.ExtendView.as_view()),
    path("staff/requests/<str:reference>/ask-information/", staff.AskInformationView.as_view()),
    path(
        "staff/requests/<str:reference>/information-received/",
        staff.InformationReceivedView.as_view(),
    ),
    path(
        "staff/requests/<str:reference>/package/",
        packages.PackageView.as_view(),
        name="api-staff-package",
    ),
    path(
        "staff/requests/<str:reference>/jobs/<str:store>/confirm/",
        packages.ConfirmManualJobView.as_view(),
        name="api-staff-job-confirm",
    ),
    path(
        "staff/requests/<str:reference>/certificate/",
        erasure.CertificateView.as_view(),
        name="api-staff-certificate",
    ),
    path("staff/requests/<str:reference>/retry/", erasure.RetryView.as_view()),
    path("staff/tasks/", erasure.StaffTaskListView.as_view(), name="api-staff-tasks"),
    path("staff/stores/", stores.StoreListView.as_view(), name="api-stores"),
    path("staff/stores/<str:name>/", stores.StoreDetailView.as_view(), name="api-store"),
    path("staff/stores/<str:name>/map/", stores.StoreMapView.as_view(), name="api-store-map"),
    path("staff/stores/<str:name>/check/", stores.StoreCheckView.as_view(), name="api-store-check"),
]
