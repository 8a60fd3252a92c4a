// The playground page: talks to the JSON API of tinylm.serve (same origin, nothing else).
"use strict";

const $ = (id) => document.getElementById(id);
const SETTINGS = ["strategy", "temperature", "top_k", "top_p", "max_new_tokens", "seed"];
const state = {
  card: null,
  promptIds: [], // the prompt of the text shown, as generated from
  generated: [], // one "token" event per generated token
  controller: null, // aborts the running generation
  stepping: null, // step mode: {key, count, finished}
  selected: null, // the position whose candidates and attention are shown
};

// A token's text as a label: spaces and line breaks made visible.
const label = (text) => text.replace(/ /g, "·").replace(/\n/g, "↵").replace(/\t/g, "⇥") || "∅";
const percent = (p) => (100 * p).toFixed(p >= 0.1 ? 1 : 2) + "%";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// fetch, or an Error carrying the server's one-sentence reason.
async function api(path, body, signal) {
  const init = body === undefined ? { signal } : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  };
  const response = await fetch(path, init);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error; } catch (_) { /* not JSON: keep the status */ }
    throw new Error(message);
  }
  return response;
}

// ---- the model card ----
async function loadCard() {
  const card = await (await api("/api/model")).json();
  state.card = card;
  const config = card.config;
  const training = card.training || {};
  const number = (value, digits) => (value === null || value === undefined ? "–" : value.toFixed(digits));
  $("card-line").textContent =
    `${training.run ? training.run + "/" : ""}${card.checkpoint} · ${(card.parameters / 1e6).toFixed(2)}M parameters · ${card.tokenizer}`;
  const shape = ["n_layer", "n_head", "d_model", "d_ff", "block_size"];
  const rows = [
    ["parameters", card.parameters.toLocaleString()],
    ["shape", `${config.n_layer} layers × ${config.n_head} heads, d_model ${config.d_model}, d_ff ${config.d_ff}`],
    ["context", `${config.block_size} tokens`],
    ["architecture", Object.entries(config).filter(([k]) => !shape.includes(k) && k !== "vocab_size")
      .map(([k, v]) => `${k}=${v}`).join(", ")],
    ["tokenizer", card.tokenizer],
    ["training steps", card.global_step === null ? "–" : card.global_step.toLocaleString()],
    ["val loss", `${number(training.val_loss, 4)} nats/token`],
    ["bits per byte", number(training.val_bpb, 4)],
    ["run", training.run || "–"],
    ["device", card.device],
  ];
  const list = $("card");
  list.replaceChildren();
  for (const [name, value] of rows) {
    list.append(element("dt", "", name), element("dd", "", value));
  }
  for (const name of SETTINGS) {
    const value = card.defaults[name];
    $(name).value = value === null ? "" : value;
  }
  $("max_new_tokens").max = card.limits.max_new_tokens;
  $("temperature").max = card.limits.max_temperature;
  $("top_k").max = card.vocab_size;
}

// ---- the prompt's tokens ----
let tokenizeTimer = null;
function scheduleTokenize() {
  clearTimeout(tokenizeTimer);
  tokenizeTimer = setTimeout(tokenizePrompt, 200);
}

async function tokenizePrompt() {
  try {
    const reply = await (await api("/api/tokenize", { prompt: $("prompt").value })).json();
    const box = $("prompt-tokens");
    box.replaceChildren();
    reply.tokens.forEach((token, position) => {
      const piece = element("span", "piece");
      piece.append(element("span", "", label(token.text)), element("small", "", String(token.id)));
      piece.title = `position ${position}: click for its attention`;
      piece.addEventListener("click", () => showAttention(reply.tokens.map((t) => t.id), position));
      box.append(piece);
    });
    box.append(element("span", "hint", `${reply.count} of ${reply.context} tokens`));
    showError("");
  } catch (error) {
    showError(error.message);
  }
}

// ---- generation ----
function request() {
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  return {
    prompt: $("prompt").value,
    strategy: $("strategy").value,
    temperature: number("temperature"),
    top_k: number("top_k"),
    top_p: number("top_p"),
    max_new_tokens: number("max_new_tokens"),
    seed: number("seed"),
  };
}

function setRunning(running) {
  $("generate").disabled = running;
  $("step").disabled = running;
  $("stop").disabled = !running;
}

async function generate(body, stepping) {
  if (state.controller) state.controller.abort();
  showError("");
  const pressed = performance.now();
  const controller = new AbortController();
  state.controller = controller;
  setRunning(true);
  $("status").textContent = "waiting for the first token…";
  document.body.dataset.state = "generating";
  let firstToken = null;
  try {
    const response = await api("/api/generate", body, controller.signal);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines) {
        if (!line) continue;
        const event = JSON.parse(line);
        if (event.type === "start") start(event);
        else if (event.type === "token") {
          addToken(event);
          if (firstToken === null) {
            firstToken = performance.now() - pressed;
            document.body.dataset.firstTokenMs = firstToken.toFixed(1);
            $("status").textContent = `first token after ${firstToken.toFixed(0)} ms…`;
          }
        } else if (event.type === "end") end(event, firstToken, stepping);
        else if (event.type === "error") showError(event.error);
      }
    }
  } catch (error) {
    if (error.name === "AbortError") $("status").textContent = "stopped";
    else showError(error.message);
  } finally {
    if (state.controller === controller) {
      state.controller = null;
      setRunning(false);
      document.body.dataset.state = "idle";
    }
  }
}

function start(event) {
  state.promptIds = event.prompt.map((token) => token.id);
  state.generated = [];
  state.seed = event.seed;
  const output = $("output");
  output.replaceChildren();
  event.prompt.forEach((token, position) => {
    const span = element("span", "prompt", token.text);
    span.dataset.position = position;
    output.append(span);
  });
}

function addToken(event) {
  state.generated.push(event);
  const span = element("span", "tok", event.text);
  span.dataset.position = state.promptIds.length + event.index;
  span.dataset.index = event.index;
  span.title = `token ${event.index}: id ${event.id}`;
  $("output").append(span);
}

function end(event, firstToken, stepping) {
  const first = firstToken === null ? "" : `, first after ${firstToken.toFixed(0)} ms`;
  const reason = event.finish_reason === "eos" ? "the model ended the text" : "max_new_tokens reached";
  $("status").textContent =
    `${event.ids.length} tokens, ${event.tokens_per_second.toFixed(0)} tokens/s${first}; ${reason}; seed ${state.seed}`;
  document.body.dataset.tokens = String(event.ids.length);
  if (stepping) {
    state.stepping.finished = event.finish_reason === "eos";
    if (state.generated.length) select(state.promptIds.length + state.generated.length - 1);
  }
}

// Step mode: the same request, seed and all, one token longer at every click; the text of the
// first tokens does not change, so each click shows one more token and its candidates.
function step() {
  if ($("seed").value === "") $("seed").value = Math.floor(Math.random() * 2 ** 31);
  const body = request();
  const key = JSON.stringify({ ...body, max_new_tokens: null });
  if (!state.stepping || state.stepping.key !== key || state.stepping.finished) {
    state.stepping = { key, count: 0, finished: false };
  }
  state.stepping.count += 1;
  generate({ ...body, max_new_tokens: state.stepping.count }, true);
}

// ---- a chosen position: its candidates and its attention ----
function select(position) {
  state.selected = position;
  for (const node of $("output").querySelectorAll(".selected")) node.classList.remove("selected");
  const span = $("output").querySelector(`[data-position="${position}"]`);
  if (span) span.classList.add("selected");
  const index = position - state.promptIds.length;
  if (index >= 0) showCandidates(state.generated[index]);
  else $("candidates-panel").hidden = true;
  showAttention([...state.promptIds, ...state.generated.map((event) => event.id)], position);
}

function showCandidates(event) {
  $("candidates-index").textContent = `${event.index} (${JSON.stringify(event.text)}, id ${event.id})`;
  const body = $("candidates").querySelector("tbody");
  body.replaceChildren();
  for (const candidate of event.candidates) {
    const row = element("tr", candidate.id === event.id ? "drawn" : "");
    const bar = (p, kind) => {
      const cell = element("td", `bar ${kind}`);
      const fill = element("span");
      fill.style.width = `${Math.max(1, 120 * p)}px`;
      cell.append(fill, document.createTextNode(percent(p)));
      return cell;
    };
    row.append(
      element("td", "", candidate.id === event.id ? "★ drawn" : ""),
      element("td", "token", JSON.stringify(candidate.text)),
      element("td", "", String(candidate.id)),
      bar(candidate.p, "model"),
      bar(candidate.p_sampled, "sampled"),
    );
    body.append(row);
  }
  $("candidates-panel").hidden = false;
}

async function showAttention(ids, position) {
  // The model reads at most its context: the window that ends at the chosen token.
  const context = state.card.config.block_size;
  const first = Math.max(0, position + 1 - context);
  const box = $("attention");
  box.textContent = "computing…";
  try {
    const reply = await (await api("/api/attention", {
      ids: ids.slice(first, position + 1), position: position - first,
    })).json();
    drawAttention(reply);
    showError("");
  } catch (error) {
    box.textContent = "";
    showError(error.message);
  }
}

function drawAttention(reply) {
  const chosen = reply.tokens[reply.position];
  $("attention-for").textContent = `for ${JSON.stringify(chosen.text)} (position ${reply.position})`;
  const table = element("table", "heat");
  const head = element("tr");
  head.append(element("th"));
  for (const token of reply.tokens) head.append(element("th", "", label(token.text)));
  table.createTHead().append(head);
  const body = table.appendChild(element("tbody"));
  reply.weights.forEach((heads, layer) => {
    heads.forEach((weights, headIndex) => {
      const row = element("tr", headIndex === 0 ? "layer-start" : "");
      row.append(element("th", "", `layer ${layer} head ${headIndex}`));
      weights.forEach((weight, key) => {
        const cell = element("td");
        // A square-root scale: weights spread over many keys are small but not nothing.
        cell.style.backgroundColor = `rgba(48, 86, 211, ${Math.sqrt(weight).toFixed(3)})`;
        cell.title = `layer ${layer}, head ${headIndex} → ${JSON.stringify(reply.tokens[key].text)}: ${percent(weight)}`;
        row.append(cell);
      });
      body.append(row);
    });
  });
  $("attention").replaceChildren(table);
  document.body.dataset.attention = `${reply.weights.length}x${reply.weights[0].length}x${reply.tokens.length}`;
}

// ---- wiring ----
window.addEventListener("DOMContentLoaded", async () => {
  $("prompt").addEventListener("input", scheduleTokenize);
  $("generate").addEventListener("click", () => { state.stepping = null; generate(request(), false); });
  $("step").addEventListener("click", step);
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("output").addEventListener("click", (event) => {
    const position = event.target.dataset && event.target.dataset.position;
    if (position !== undefined) select(Number(position));
  });
  try {
    await loadCard();
    document.body.dataset.ready = "true";
    tokenizePrompt();
  } catch (error) {
    showError(error.message);
  }
});
