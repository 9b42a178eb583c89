"""Fake HTTP servers on 127.0.0.1 for what the emulator will not do.

- :mod:`tests.fake_servers.scripted`: plays a script of byte writes, sleeps, closes and resets
  per request, for timing and error-classification tests of the client and the load path.
- :mod:`tests.fake_servers.hostile`: answers with one hostile behaviour per request (cut
  streams, garbage, giant lines, script tags in the text), for the reliability matrix.
- :mod:`tests.fake_servers.fixed`: the same answer to every request (a gateway that always
  answers 429 with ``Retry-After``; a server that stops listening after the preflight).

The first two speak raw sockets so that every byte and every connection end is the test's
choice; the emulator (the ``emulator`` fixture in ``tests/conftest.py``) is for well-formed
traffic with ground truth.
"""
