from requests.models.audit import AuditChainHead, AuditEvent
from requests.models.request import DataRequest
from requests.models.verification import IdentityVerification

__all__ = ["AuditChainHead", "AuditEvent", "DataRequest", "IdentityVerification"]
