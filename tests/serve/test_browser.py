"""The playground as a user meets it: `python scripts/serve.py` as a real process on a loopback
port, driven by headless Chromium (Debian's chromium and chromedriver, through Selenium); and
50 concurrent generations against that one server."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REPO_ROOT, run_script

URL_LINE = re.compile(r"The playground is at (http://\S+/)")
browser_missing = shutil.which("chromium") is None or shutil.which("chromedriver") is None


def read_lines(stream, into: queue.Queue) -> None:
    """Every line of `stream` into `into`, then "" at its end. A thread, since select() on the
    pipe would miss lines that the text stream's buffer holds already (serve.py writes two lines
    at once), and it keeps the pipe drained while the server runs."""
    for line in stream:
        into.put(line)
    into.put("")


@pytest.fixture(scope="module")
def server(trained_run, tmp_path_factory) -> Iterator[str]:
    """scripts/serve.py on a free loopback port, as a user starts it: its URL."""
    folder = tmp_path_factory.mktemp("serve")
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "scripts" / "serve.py"),
         f"ckpt_path={trained_run / 'run'}", "port=0", "device=cpu", f"hydra.run.dir={folder}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    lines = queue.Queue()
    threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True).start()
    output, deadline = "", time.monotonic() + 120
    while (found := URL_LINE.search(output)) is None:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = ""
        if not line:
            process.kill()
            pytest.fail(f"serve.py printed no URL:\n{output}")
        output += line
    try:
        yield found.group(1).rstrip("/")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_refuses_a_port_that_is_taken_in_one_sentence(server, tmp_path, trained_run):
    port = server.rsplit(":", 1)[1]
    result = run_script(
        "serve", f"ckpt_path={trained_run / 'run'}", f"port={port}", f"hydra.run.dir={tmp_path}",
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"error: Cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "choose another port=" in result.stderr


@pytest.fixture
def browser() -> Iterator:
    if browser_missing:
        pytest.fail("The browser test needs chromium and chromedriver: apt-get install chromium "
                    "chromium-driver (.ci/run installs them).")  # fmt: skip
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser
    options = Options()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1100", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_streams_text_and_shows_candidates_attention_steps_and_errors(
    server, browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)
    find = browser.find_element
    browser.get(server + "/")
    wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    card = find(By.ID, "card").text
    assert "training steps\n200" in card and "char (vocab" in card

    prompt = "Once upon a time, Lily"
    find(By.ID, "prompt").send_keys(prompt)
    wait.until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "#prompt-tokens .piece")) == len(prompt)
    )
    first_piece = find(By.CSS_SELECTOR, "#prompt-tokens .piece").text.split("\n")
    assert first_piece[0] == "O" and first_piece[1].isdigit()  # its text and its id

    for name, value in (("seed", "5"), ("max_new_tokens", "120"), ("top_k", "5")):
        find(By.ID, name).clear()
        find(By.ID, name).send_keys(value)
    find(By.ID, "generate").click()
    wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "idle"
               and b.find_element(By.TAG_NAME, "body").get_attribute("data-tokens"))  # fmt: skip
    # The same request without the settings left at their defaults: the page starts from the
    # API's defaults (one set, conf/generate.yaml's), so the texts agree.
    expected = httpx.post(server + "/api/generate", json={
        "prompt": prompt, "seed": 5, "max_new_tokens": 120, "top_k": 5,
    }).text.splitlines()[-1]  # fmt: skip
    expected_text = re.search(r'"text": (".*?"), "ids"', expected).group(1)
    shown = find(By.ID, "output").text
    generated = browser.execute_script(
        "return [...document.querySelectorAll('#output .tok')].map(s => s.textContent).join('')"
    )
    assert shown.startswith(prompt) and generated == __import__("json").loads(expected_text)
    body = find(By.TAG_NAME, "body")
    first_token_ms = float(body.get_attribute("data-first-token-ms"))
    assert first_token_ms > 0
    assert "tokens/s" in find(By.ID, "status").text and "seed 5" in find(By.ID, "status").text

    # A generated token opens its candidates (the drawn one marked) and its attention.
    tokens = browser.find_elements(By.CSS_SELECTOR, "#output .tok")
    tokens[3].click()
    wait.until(lambda b: b.find_element(By.ID, "candidates-panel").is_displayed())
    drawn = find(By.CSS_SELECTOR, "#candidates tr.drawn").text
    assert drawn.startswith("★ drawn")
    rows = browser.find_elements(By.CSS_SELECTOR, "#candidates tbody tr")
    assert 10 <= len(rows) <= 11
    sampled = [float(r.text.split("%")[-2].split()[-1]) for r in rows]  # the last column, in %
    assert sum(sampled) == pytest.approx(100, abs=0.5)  # top-5: all of the draw's probability
    position = len(prompt) + 3
    wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-attention")
               == f"2x2x{position + 1}")  # fmt: skip
    assert len(browser.find_elements(By.CSS_SELECTOR, "#attention tbody tr")) == 2 * 2
    assert f"(position {position})" in find(By.ID, "attention-for").text
    browser.save_screenshot(str(tmp_path / "playground.png"))
    assert (tmp_path / "playground.png").stat().st_size > 20_000
    assert browser.get_log("browser") == []  # nothing failed to load, no script error

    # Step mode: one more token per click, the earlier ones unchanged.
    find(By.ID, "max_new_tokens").clear()
    find(By.ID, "max_new_tokens").send_keys("50")
    texts = []
    for clicks in (1, 2, 3):
        find(By.ID, "step").click()
        wait.until(lambda b, n=clicks: b.find_element(By.TAG_NAME, "body").get_attribute(
            "data-tokens") == str(n) and b.find_element(By.TAG_NAME, "body").get_attribute(
            "data-state") == "idle")  # fmt: skip
        texts.append(
            browser.execute_script(
                "return [...document.querySelectorAll('#output .tok')].map(s => s.textContent)"
            )
        )
    assert [len(t) for t in texts] == [1, 2, 3]
    assert texts[2][:2] == texts[1] and texts[1][:1] == texts[0]
    assert generated.startswith("".join(texts[2]))  # seed 5 again: the same first tokens

    # A refused setting: the server's sentence on the page.
    find(By.ID, "temperature").clear()
    find(By.ID, "temperature").send_keys("50")
    find(By.ID, "generate").click()
    wait.until(lambda b: b.find_element(By.ID, "error").is_displayed())
    assert find(By.ID, "error").text == "temperature must be between 0 and 5.0, not 50.0."


def test_fifty_concurrent_generations_are_served_or_turned_away_cleanly(server):
    """50 generations at once: each is served or answered 503 at once; the time to the first
    token and the rate of those served are printed for the note."""

    async def one(client: httpx.AsyncClient) -> tuple[int, float | None, float | None]:
        sent = time.perf_counter()
        request = {"prompt": "Once", "max_new_tokens": 32, "stop_at_eos": False, "seed": 1}
        async with client.stream("POST", "/api/generate", json=request) as response:
            if response.status_code != 200:
                await response.aread()
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "5"
                return 503, None, time.perf_counter() - sent
            first = None
            async for line in response.aiter_lines():
                if first is None and '"type": "token"' in line:
                    first = time.perf_counter() - sent
                last = line
            assert '"type": "end"' in last and '"finish_reason": "length"' in last
            return 200, first, 32 / (time.perf_counter() - sent - first)

    async def fifty() -> list[tuple[int, float | None, float | None]]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=server, timeout=60, limits=limits) as client:
            return await asyncio.wait_for(asyncio.gather(*(one(client) for _ in range(50))), 90)

    results = asyncio.run(fifty())
    served = [r for r in results if r[0] == 200]
    turned_away = [r for r in results if r[0] == 503]
    assert len(served) + len(turned_away) == 50
    assert len(served) >= 9  # the one running and the 8 that may wait (limits.waiting)
    assert max(seconds for _, _, seconds in turned_away) < 5  # answered at once, not stalled
    first = sorted(r[1] for r in served)
    rates = [r[2] for r in served]
    p95 = first[min(len(first) - 1, round(0.95 * (len(first) - 1)))]
    print(
        f"\nload: {len(served)} served, {len(turned_away)} answered 503; time to first token "
        f"p50 {statistics.median(first) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms; "
        f"{statistics.median(rates):.0f} tokens/s (median of the served streams)"
    )
