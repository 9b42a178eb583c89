"""chatprobe's locust entry point: streamed chat completions measured from exact samples.

Run by ``chatprobe load`` (which writes a run plan and sets ``$CHATPROBE_LOAD_PLAN``), or as is:

    chatprobe emulate --port 8000 &
    locust -f loadtests/locustfile.py --headless -u 5 -t 5s --host http://127.0.0.1:8000/aimlapi/v1

Bare runs pick the provider from the host's ``/<provider>/v1`` path (else
``$CHATPROBE_PROVIDER``), the model from ``$CHATPROBE_MODEL`` (else the profile's first
non-free model), and write ``results/<run-id>/`` (or ``$CHATPROBE_OUT``). locust's UI and
CSV show one ``POST`` row per provider/model (one per real request); ``TTFT``, ``ITL`` and
``E2E`` go to a table of their own (``locust_timings.csv``); reports read the exact
``samples.jsonl`` instead. A locustfile of one's own subclasses ``chatprobe.load.ChatUser``.
See docs/load.md.
"""

from chatprobe.load.plugin import install

globals().update(install())
