"""The playground's API, in process: every endpoint, the streamed events, generation equal to
scripts/generate.py's, probabilities equal to the model's softmax, attention equal to
scripts/attention.py's weights, and every refused request's status and sentence."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import compose_config
from tests.serve.conftest import playground_for
from tinylm.checkpoint import resolve_checkpoint_path
from tinylm.commands.attention import attention
from tinylm.commands.generate import generate
from tinylm.generation import GenerationSettings
from tinylm.runs.folder import RunFolder
from tinylm.serve import Limits

PROMPT = "Once upon a time, Tom"


def events_of(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def generated(client, **settings) -> list[dict]:
    return events_of(client.post("/api/generate", json={"prompt": PROMPT, **settings}))


def test_the_model_card_says_what_the_run_folder_says(client, playground, trained_run):
    card = client.get("/api/model").json()
    model = playground.model
    assert card["parameters"] == model.num_parameters()
    assert card["config"] == model.config.to_dict()
    assert card["tokenizer"] == playground.tokenizer.describe()
    assert card["global_step"] == 200
    rows = RunFolder(trained_run / "run").metrics.read_text().splitlines()
    header = rows[0].split(",")
    last_val = [dict(zip(header, row.split(","), strict=True)) for row in rows[1:]]
    last_val = [row for row in last_val if row["val/loss"]][-1]  # the validation at step 200
    assert card["training"]["val_loss"] == pytest.approx(float(last_val["val/loss"]))
    assert card["training"]["val_bpb"] == pytest.approx(float(last_val["val/bpb"]))
    assert card["limits"]["max_new_tokens"] == 300
    assert card["defaults"]["temperature"] == GenerationSettings().temperature


def test_the_page_is_served_with_everything_it_loads_and_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="app.js"' in page.text and 'href="style.css"' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no address elsewhere
    for asset in ("/app.js", "/style.css"):
        assert client.get(asset).status_code == 200


def test_tokenize_gives_the_tokenizers_ids_and_pieces(client, playground):
    reply = client.post("/api/tokenize", json={"prompt": PROMPT}).json()
    assert [token["id"] for token in reply["tokens"]] == playground.tokenizer.encode(PROMPT)
    assert "".join(token["text"] for token in reply["tokens"]) == PROMPT
    assert reply["count"] == len(PROMPT) and reply["context"] == playground.config.block_size


@pytest.mark.parametrize(
    "settings",
    [
        {"strategy": "sample", "temperature": 0.8, "top_k": 5, "top_p": 1.0},
        {"strategy": "sample", "temperature": 1.3, "top_k": None, "top_p": 0.9},
        {"strategy": "greedy", "temperature": 1.0, "top_k": None, "top_p": 1.0},
    ],
)
def test_a_seeded_generation_is_generate_pys_text(client, trained_run, settings):
    overrides = [f"{name}={'null' if value is None else value}" for name, value in settings.items()]
    cfg = compose_config(
        "generate", f"ckpt_path={trained_run / 'run'}", f"prompt='{PROMPT}'", "seed=7",
        "max_new_tokens=120", "device=cpu", *overrides,
    )  # fmt: skip
    (record,) = generate(cfg)
    events = generated(client, seed=7, max_new_tokens=120, **settings)
    start, tokens, end = events[0], events[1:-1], events[-1]
    assert start["type"] == "start" and start["seed"] == 7
    assert all(event["type"] == "token" for event in tokens)
    assert [event["index"] for event in tokens] == list(range(len(tokens)))
    assert [event["id"] for event in tokens] == record["tokens"] == end["ids"]
    assert "".join(event["text"] for event in tokens) == record["text"] == end["text"]
    assert end["type"] == "end" and end["finish_reason"] == record["finish_reason"]


def test_the_same_seed_gives_the_same_text_and_no_seed_a_told_one(client):
    first, again = generated(client, seed=3), generated(client, seed=3)
    assert first[-1]["text"] == again[-1]["text"]
    unseeded = generated(client, max_new_tokens=20)
    replayed = generated(client, max_new_tokens=20, seed=unseeded[0]["seed"])
    assert unseeded[-1]["ids"] == replayed[-1]["ids"]


def test_candidates_hold_the_models_softmax_and_the_distribution_drawn_from(client, playground):
    settings = {"seed": 11, "max_new_tokens": 25, "temperature": 0.7, "top_k": 4, "candidates": 6}
    events = generated(client, **settings)
    prompt_ids = [token["id"] for token in events[0]["prompt"]]
    tokens = events[1:-1]
    ids = prompt_ids + [event["id"] for event in tokens]
    with torch.inference_mode():
        logits = playground.model(torch.tensor([ids]))[0].float()  # (T, V), no cache
    for event in tokens:
        step_logits = logits[len(prompt_ids) + event["index"] - 1]  # what predicted this token
        softmax = step_logits.softmax(-1)
        expected_top = softmax.topk(6).indices.tolist()
        shown = [candidate["id"] for candidate in event["candidates"]]
        assert shown[:6] == expected_top
        assert event["id"] in shown
        kept = (step_logits / 0.7).topk(4)
        sampled = dict(zip(kept.indices.tolist(), kept.values.softmax(-1).tolist(), strict=True))
        for candidate in event["candidates"]:
            assert candidate["p"] == pytest.approx(softmax[candidate["id"]].item(), abs=1e-5)
            expected = sampled.get(candidate["id"], 0.0)
            assert candidate["p_sampled"] == pytest.approx(expected, abs=1e-5)
        assert event["id"] in sampled  # drawn from the top 4


def test_greedy_candidates_put_everything_on_the_most_likely_token(client):
    for event in generated(client, strategy="greedy", max_new_tokens=10)[1:-1]:
        best = max(event["candidates"], key=lambda candidate: candidate["p"])
        assert best["id"] == event["id"] and best["p_sampled"] == 1.0
        assert sum(candidate["p_sampled"] for candidate in event["candidates"]) == 1.0


def test_attention_is_attention_pys_weights(client, trained_run, tmp_path):
    cfg = compose_config(
        "attention", f"ckpt_path={trained_run / 'run'}", f"prompt='{PROMPT}'", "device=cpu",
        f"output_file={tmp_path / 'attention.png'}",
    )  # fmt: skip
    drawn = attention(cfg)  # weights (L, H, T, T)
    reply = client.post("/api/attention", json={"prompt": PROMPT}).json()
    assert reply["position"] == len(drawn.token_ids) - 1
    assert [token["id"] for token in reply["tokens"]] == drawn.token_ids
    assert torch.tensor(reply["weights"]).equal(drawn.weights[:, :, -1, :])
    middle = client.post("/api/attention", json={"ids": drawn.token_ids, "position": 5}).json()
    assert len(middle["tokens"]) == 6
    torch.testing.assert_close(torch.tensor(middle["weights"]), drawn.weights[:, :, 5, :6])


TOO_LONG = "x" * 20_001
# (path, body, status, what the sentence must say)
BAD_REQUESTS = [
    ("/api/generate", b"{not json", 400, "not valid JSON"),
    ("/api/generate", b"[1, 2]", 400, "must be a JSON object"),
    ("/api/generate", {"prompt": "a", "tempreature": 1}, 400, "Unknown setting 'tempreature'"),
    ("/api/generate", {"max_new_tokens": "5"}, 400, "max_new_tokens should be a valid integer"),
    ("/api/generate", {"max_new_tokens": 2.5}, 400, "max_new_tokens should be a valid integer"),
    ("/api/generate", {"max_new_tokens": 0}, 400, "max_new_tokens must be between 1 and 300"),
    ("/api/generate", {"max_new_tokens": 301}, 400, "(this server's limit)"),
    ("/api/generate", {"temperature": -0.1}, 400, "temperature must be between 0 and 5.0"),
    ("/api/generate", {"temperature": 50}, 400, "temperature must be between 0 and 5.0"),
    ("/api/generate", {"temperature": None}, 400, "temperature should be a valid number"),
    ("/api/generate", {"top_k": 0}, 400, "top_k must be between 1 and"),
    ("/api/generate", {"top_k": 10**6}, 400, "(the vocabulary's size)"),
    ("/api/generate", {"top_p": 0}, 400, "is not allowed: top_p takes a number in (0, 1]"),
    ("/api/generate", {"top_p": 1.5}, 400, "top_p=1.5 is not allowed: top_p takes a number in"),
    ("/api/generate", {"strategy": "beam"}, 400, "strategy must be greedy or sample here"),
    ("/api/generate", {"seed": -1}, 400, "seed must be between 0 and"),
    ("/api/generate", {"candidates": 0}, 400, "candidates must be between 1 and 20"),
    ("/api/generate", {"stop_at_eos": 1}, 400, "stop_at_eos should be a valid boolean"),
    ("/api/generate", {"prompt": "a" * 300}, 400, "more than the model's context"),
    ("/api/tokenize", {"prompt": "x€"}, 400, "The character tokenizer never saw"),
    ("/api/generate", {"prompt": TOO_LONG}, 400, "The prompt's length in characters must be"),
    ("/api/generate", {"prompt": "x" * 70_000}, 413, "larger than 65,536 bytes"),
    ("/api/tokenize", {}, 400, "prompt is missing"),
    ("/api/tokenize", {"prompt": 42}, 400, "prompt should be a valid string"),
    ("/api/attention", {}, 400, "Give the text as prompt or its token ids as ids"),
    ("/api/attention", {"prompt": "ab", "ids": [1]}, 400, "one of the two"),
    ("/api/attention", {"ids": []}, 400, "The number of ids must be between 1 and"),
    ("/api/attention", {"ids": [1, 99_999]}, 400, "Every id must be between 0 and"),
    ("/api/attention", {"ids": [1, 2], "position": 2}, 400, "position must be between 0 and 1"),
    ("/api/attention", {"ids": ["a"]}, 400, "ids.0 should be a valid integer"),
]


@pytest.mark.parametrize(("path", "body", "status", "says"), BAD_REQUESTS)
def test_a_bad_request_is_refused_in_one_sentence(client, path, body, status, says):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content)
    assert response.status_code == status
    message = response.json()["error"]
    assert says in message
    assert message.endswith(".") and "\n" not in message


def test_unknown_paths_methods_and_hosts_are_refused(client):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and "the API is GET /api/model" in missing.json()["error"]
    wrong_method = client.get("/api/generate")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"].startswith("GET is not accepted at /api/generate")
    # A page elsewhere that resolves its own name to 127.0.0.1 cannot use the server.
    assert client.get("/api/model", headers={"host": "evil.example"}).status_code == 400


def test_a_checkpoint_outside_a_run_folder_has_a_card_without_validation(trained_run, tmp_path):
    alone = tmp_path / "model.ckpt"
    alone.write_bytes(resolve_checkpoint_path(trained_run / "run").read_bytes())
    card = playground_for(alone, Limits()).card()
    assert card["checkpoint"] == "model.ckpt" and card["global_step"] == 200
    assert card["training"]["run"] is None and card["training"]["val_loss"] is None
