"""The portal's settings plus a trivial JSON view (the verification row's limit side)."""

from registry.settings import *  # noqa: F403

ROOT_URLCONF = "tests.benchmarks.bench_urls"
