from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "teams"
    verbose_name = "Organisations and teams"

    def ready(self) -> None:
        from teams import signals  # noqa: F401 - connects the receivers
