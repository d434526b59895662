from requests.models.audit import AuditChainHead, AuditEvent
from requests.models.jobs import Job, JobKind, JobState
from requests.models.request import DataRequest
from requests.models.stores import ConnectedStore, StoreKind
from requests.models.verification import IdentityVerification

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "ConnectedStore",
    "DataRequest",
    "IdentityVerification",
    "Job",
    "JobKind",
    "JobState",
    "StoreKind",
]
