"""Bounded load test (run on demand: `pytest -m load -s`): N concurrent questions through the chat
app's API on 127.0.0.1, a fixed count each; prints throughput, p50/p95 latency and errors, and
checks every answer's citations resolve to exact quotes."""

from __future__ import annotations

import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import SEEDS, free_port

from assistant.answer import Answerer
from assistant.chat import build_app
from assistant.config import Settings

pytestmark = pytest.mark.load
QUESTIONS = [
    "How many individuals and organizations did the US sanction?",
    "Who is Oleg Kozhemyako?",
    "What did the South Korean Unification Minister say?",
    "What is the population of Pyongyang?",
]
PER_CLIENT = 2


@pytest.fixture(scope="module")
def app_url(seed_cfg: Settings) -> Any:
    app = build_app(seed_cfg, Answerer(seed_cfg)).queue(default_concurrency_limit=2, max_size=64)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def _valid(answer: dict[str, Any]) -> bool:
    numbers = {f["n"] for f in answer["citations"]}
    for f in answer["citations"]:
        if (SEEDS / f["doc"]).read_text(encoding="utf-8")[f["start"] : f["end"]] != f["quote"]:
            return False
    return all(n in numbers for s in answer["sentences"] for n in s["citations"])


@pytest.mark.parametrize("clients", [1, 2, 4])
def test_concurrent_questions(app_url: str, clients: int, tmp_path: Path) -> None:
    from gradio_client import Client

    def one_client(i: int) -> list[tuple[float, bool, str]]:
        client = Client(app_url, verbose=False)
        results = []
        for j in range(PER_CLIENT):
            t0 = time.perf_counter()
            try:
                answer = client.predict(QUESTIONS[(i + j) % len(QUESTIONS)], api_name="/answer_json")
                results.append((time.perf_counter() - t0, _valid(answer), ""))
            except Exception as exc:  # counted, reported, and failed below
                results.append((time.perf_counter() - t0, False, repr(exc)))
        return results

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        rows = [r for chunk in pool.map(one_client, range(clients)) for r in chunk]
    wall = time.perf_counter() - t0
    latencies = sorted(r[0] for r in rows)
    errors = [r[2] for r in rows if r[2]]
    print(f"\nN={clients}: {len(rows)} answers in {wall:.1f} s, {len(rows) / wall * 60:.2f}/min, "
          f"p50 {statistics.median(latencies):.1f} s, p95 {latencies[math.ceil(0.95 * len(latencies)) - 1]:.1f} s, "
          f"errors {len(errors)}")
    assert errors == []
    assert all(r[1] for r in rows)
