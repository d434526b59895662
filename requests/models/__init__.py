from requests.models.audit import AuditChainHead, AuditEvent
from requests.models.erasure import ErasureCertificate, SuppressionEntry
from requests.models.identifiers import (
    IdentifierMethod,
    IdentifierState,
    IdentifierVerification,
)
from requests.models.jobs import HeldFor, Job, JobKind, JobState
from requests.models.mail import DemoMail, SubjectNotice
from requests.models.notes import RequestNote
from requests.models.packages import AccessPackage, DownloadCode
from requests.models.replies import SubjectReply
from requests.models.request import DataRequest
from requests.models.staff import DigestClaim, StaffProfile
from requests.models.stores import ConnectedStore, StoreKind
from requests.models.tokens import ApiToken
from requests.models.verification import IdentityVerification

__all__ = [
    "AccessPackage",
    "ApiToken",
    "AuditChainHead",
    "AuditEvent",
    "ConnectedStore",
    "DataRequest",
    "DemoMail",
    "DigestClaim",
    "DownloadCode",
    "ErasureCertificate",
    "HeldFor",
    "IdentifierMethod",
    "IdentifierState",
    "IdentifierVerification",
    "IdentityVerification",
    "Job",
    "JobKind",
    "JobState",
    "RequestNote",
    "StaffProfile",
    "StoreKind",
    "SubjectNotice",
    "SubjectReply",
    "SuppressionEntry",
]
