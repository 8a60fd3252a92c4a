"""The playground's speed against generate()'s: time to the first token and tokens per second.

    python benchmarks/serve_speed.py
    python benchmarks/serve_speed.py --new-tokens 512 --repeats 5 --no-browser

The issue's shape: conf/model/medium.yaml with context 256 and a 4,096-token vocabulary (a BPE
tokenizer learned from Tiny Shakespeare; random weights: speed does not depend on them),
sampling with generate.py's settings (temperature 0.8, top-k 200), end-of-text ignored so every
run makes --new-tokens tokens. The checkpoint is written to a temporary folder and served by
`python scripts/serve.py` as a user starts it; the runs alternate between

- generate(): tinylm.generation in this process, as generate.py and
  benchmarks/generation_speed.py run it;
- the API: POST /api/generate over loopback HTTP, from sending the request to the first token
  event, and the stream's rate after it (each event carries the 10 top candidates);
- the page (headless chromium, when installed): from the click on Generate to the first token
  shown (the page's own clock, performance.now()).

Figures are medians of --repeats runs of each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch
from omegaconf import OmegaConf

from tinylm.generation import GenerationSettings, generate
from tinylm.model import GPT, GPTConfig
from tinylm.tokenizers.bpe import BPETokenizer

REPO = Path(__file__).resolve().parents[1]
TEXT = Path(os.environ.get("TINYLM_SHARED", REPO.parent.parent / "shared")) / "data"
PROMPT = "ROMEO:"


def write_checkpoint(folder: Path, block_size: int, vocab_size: int) -> Path:
    """A tinylm checkpoint of the medium shape with random weights and a learned BPE."""
    text = (TEXT / "tinyshakespeare.txt").read_text()
    tokenizer = BPETokenizer.train([text], vocab_size, sample_mb=2)
    shape = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / "medium.yaml"))
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **{**shape, "block_size": block_size})
    torch.manual_seed(0)
    model = GPT(config)
    path = folder / "medium.ckpt"
    torch.save(
        {
            "state_dict": {f"model.{name}": value for name, value in model.state_dict().items()},
            "hyper_parameters": {
                "model_config": config.to_dict(),
                "tokenizer_state": tokenizer.state_dict(),
            },
            "global_step": 0,
        },
        path,
    )
    return path


def start_server(checkpoint: Path, folder: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "serve.py"), f"ckpt_path={checkpoint}",
         "port=0", "device=cpu", f"hydra.run.dir={folder}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in process.stdout:
        found = re.search(r"(http://\S+)/ ", line)
        if found:
            return process, found.group(1)
    raise RuntimeError("serve.py printed no URL")


def direct_rate(model: GPT, prompt_ids: list[int], settings: GenerationSettings) -> float:
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    generate(model, prompt_ids, settings, eos_id=-1, generator=generator)
    return settings.max_new_tokens / (time.perf_counter() - started)


def served(client: httpx.Client, body: dict) -> tuple[float, float]:
    """Time to the first token event (s) and the rate of the tokens after it (tokens/s)."""
    sent = time.perf_counter()
    first, count = None, 0
    with client.stream("POST", "/api/generate", json=body) as response:
        for line in response.iter_lines():
            if '"type": "token"' in line:
                count += 1
                if first is None:
                    first = time.perf_counter()
    done = time.perf_counter()
    return first - sent, (count - 1) / (done - first)


def page_first_token_ms(url: str, new_tokens: int, repeats: int) -> list[float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ["SE_OFFLINE"] = "true"
    options = Options()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    times = []
    try:
        driver.get(url + "/")
        body = driver.find_element(By.TAG_NAME, "body")
        wait = WebDriverWait(driver, 60, poll_frequency=0.05)
        wait.until(lambda _: body.get_attribute("data-ready"))
        driver.find_element(By.ID, "prompt").send_keys(PROMPT)
        for name, value in (("temperature", "0.8"), ("top_k", "200"), ("seed", "0"),
                            ("max_new_tokens", str(new_tokens))):  # fmt: skip
            driver.find_element(By.ID, name).clear()
            driver.find_element(By.ID, name).send_keys(value)
        for _ in range(repeats):
            driver.execute_script("document.body.dataset.firstTokenMs = ''")
            driver.find_element(By.ID, "generate").click()
            wait.until(lambda _: body.get_attribute("data-state") == "idle"
                       and body.get_attribute("data-first-token-ms"))  # fmt: skip
            times.append(float(body.get_attribute("data-first-token-ms")))
    finally:
        driver.quit()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        checkpoint = write_checkpoint(folder, args.block_size, args.vocab_size)
        saved = torch.load(checkpoint, weights_only=True)
        config = GPTConfig(**saved["hyper_parameters"]["model_config"])
        model = GPT(config).eval()
        model.load_state_dict({k.removeprefix("model."): v for k, v in saved["state_dict"].items()})
        tokenizer = BPETokenizer.from_state(saved["hyper_parameters"]["tokenizer_state"])
        prompt_ids = tokenizer.encode(PROMPT)
        settings = GenerationSettings(
            strategy="sample", temperature=0.8, top_k=200, max_new_tokens=args.new_tokens,
            stop_at_eos=False,
        )  # fmt: skip
        body = {"prompt": PROMPT, "temperature": 0.8, "top_k": 200, "seed": 0,
                "max_new_tokens": args.new_tokens, "stop_at_eos": False}  # fmt: skip
        process, url = start_server(checkpoint, folder)
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                served(client, {**body, "max_new_tokens": 8})  # warm-up
                direct_rate(model, prompt_ids, settings)
                direct, api_first, api_rate = [], [], []
                for _ in range(args.repeats):
                    direct.append(direct_rate(model, prompt_ids, settings))
                    first, rate = served(client, body)
                    api_first.append(first * 1000)
                    api_rate.append(rate)
            browser = shutil.which("chromium") and shutil.which("chromedriver")
            page = (
                []
                if args.no_browser or not browser
                else page_first_token_ms(url, args.new_tokens, args.repeats)
            )
        finally:
            process.terminate()
            process.wait()

    print(
        f"medium shape (4 layers, d_model 256), context {config.block_size}, vocabulary "
        f"{config.vocab_size:,}; sampling T=0.8, top-k 200; {args.new_tokens} new tokens; "
        f"medians of {args.repeats}; load average {os.getloadavg()[0]:.1f}\n"
    )
    direct_median, api_median = statistics.median(direct), statistics.median(api_rate)
    print(json.dumps({
        "generate_tokens_per_s": round(direct_median, 1),
        "api_tokens_per_s": round(api_median, 1),
        "api_share_of_generate": round(api_median / direct_median, 3),
        "api_first_token_ms": round(statistics.median(api_first), 1),
        "page_first_token_ms": round(statistics.median(page), 1) if page else None,
        "runs": {"generate": direct, "api": api_rate, "api_first_ms": api_first,
                 "page_first_ms": page},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
