"""SMTP that also reaches internationalised addresses (RFC 6531, SMTPUTF8).

Django's SMTP backend turns a non-ASCII local part into an RFC 2047 encoded word, which no
mailbox answers to: `stanisław.wójcik@wp.pl` would never get their code. Messages to or from
such an address are sent here as UTF-8 (envelope and headers) with the SMTPUTF8 extension; a
server that does not offer it refuses with smtplib's SMTPNotSupportedError, which names no
address. Every other message goes through Django's backend unchanged.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage as Utf8Message

from django.core.mail.backends import smtp

# Headers Django sets that are copied as they are; the addresses and the body are set anew.
_KEPT_HEADERS = ("Date", "Message-ID")


class EmailBackend(smtp.EmailBackend):
    def _send(self, email_message) -> bool:
        recipients = email_message.recipients()
        if not recipients:
            return False
        if all(address.isascii() for address in [email_message.from_email, *recipients]):
            return super()._send(email_message)
        django_message = email_message.message()
        message = Utf8Message(policy=policy.SMTPUTF8)
        message["Subject"] = email_message.subject
        message["From"] = email_message.from_email
        if email_message.to:
            message["To"] = ", ".join(email_message.to)
        if email_message.cc:
            message["Cc"] = ", ".join(email_message.cc)
        if email_message.reply_to:
            message["Reply-To"] = ", ".join(email_message.reply_to)
        for name in _KEPT_HEADERS:
            if django_message[name]:
                message[name] = str(django_message[name])
        message.set_content(email_message.body, charset="utf-8")
        try:
            self.connection.send_message(
                message, from_addr=email_message.from_email, to_addrs=recipients
            )
        except Exception:
            if not self.fail_silently:
                raise
            return False
        return True
