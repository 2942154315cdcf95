from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from audit import sealing, signals  # noqa: F401 - connects the receivers

        sealing.start_sealer_if_configured()
