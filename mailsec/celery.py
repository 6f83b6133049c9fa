import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailsec.settings")

app = Celery("mailsec")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _prepare_broker_folders(sender, **kwargs):
    """The filesystem transport (used when REDIS_URL is unset) needs its folders to exist."""
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)
    backend = sender.conf.result_backend or ""
    if backend.startswith("file://"):
        os.makedirs(backend.removeprefix("file://"), exist_ok=True)
