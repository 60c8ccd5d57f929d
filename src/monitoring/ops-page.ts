// The ops page at /ops: one self-contained HTML document (inline CSS and JS, nothing to build or fetch
// from elsewhere) that polls the /ops/api JSON every 2 s. Data is put in with textContent, never as HTML.

export const OPS_REFRESH_MS = 2000;

const CSS = `
  :root { --bg:#0f1419; --panel:#182029; --line:#2a3643; --text:#d8dee6; --dim:#8a97a6; --bad:#ff6b6b;
          --warn:#f5b642; --ok:#5fd38d; --accent:#6cb6ff; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; gap:16px; align-items:baseline; padding:12px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  #status { color:var(--dim); } #status.bad { color:var(--bad); }
  main { padding:12px 20px; display:grid; gap:16px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:12px 16px; }
  h2 { font-size:15px; margin:0 0 8px; } h3 { font-size:14px; margin:12px 0 4px; }
  table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
  th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--dim); font-weight:500; } td.num, th.num { text-align:right; }
  tr.stalled td { background:rgba(255,107,107,.18); color:var(--bad); font-weight:600; }
  .badge { display:inline-block; padding:0 6px; border-radius:8px; font-size:12px; border:1px solid var(--line); }
  .badge.bad { border-color:var(--bad); color:var(--bad); } .badge.ok { border-color:var(--ok); color:var(--ok); }
  .summary { display:flex; gap:18px; flex-wrap:wrap; color:var(--dim); margin-bottom:4px; }
  .summary b { color:var(--text); }
  .empty { color:var(--dim); font-style:italic; }
  button { background:#24425f; color:var(--text); border:1px solid var(--accent); border-radius:4px; padding:2px 10px;
           cursor:pointer; } button:disabled { opacity:.4; cursor:default; }
  select { background:var(--bg); color:var(--text); border:1px solid var(--line); padding:2px 6px; }
  .msg { max-width:420px; overflow-wrap:anywhere; color:var(--dim); }
`;

/** Browser code; plain ES2020 so any current browser runs it as it is. */
const SCRIPT = `
(() => {
  const REFRESH_MS = ${OPS_REFRESH_MS};
  const $ = (id) => document.getElementById(id);
  let selectedStage = '';
  let busy = false;

  // Builds an element; strings become text nodes, so nothing from the API is parsed as HTML.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const fmt = (n, digits = 0) => (typeof n === 'number' ? n.toFixed(digits) : '–');
  const when = (t) => (t ? new Date(t).toLocaleTimeString() : '–');

  async function api(path, init) {
    const res = await fetch(path, init);
    const body = await res.json();
    if (!res.ok) throw new Error((body.error && body.error.message) || res.statusText);
    return body;
  }

  function renderStages(data) {
    const root = $('stages');
    if (!data.stages.length) { root.replaceChildren(h('p', { class: 'empty' }, 'no stages run here')); return; }
    root.replaceChildren(...data.stages.map((s) => h('div', { 'data-stage': s.name },
      h('h3', {}, s.name, ' ', h('span', { class: 'badge ' + (s.members > 0 ? 'ok' : 'bad') },
        s.state + ', ' + s.members + ' member' + (s.members === 1 ? '' : 's')),
        s.stalled ? h('span', { class: 'badge bad', 'data-testid': 'stalled-badge' }, s.stalled + ' stalled') : null),
      h('div', { class: 'summary' },
        h('span', {}, 'lag ', h('b', { 'data-field': 'lag' }, fmt(s.lag))),
        h('span', {}, 'oldest ', h('b', { 'data-field': 'lagSeconds' }, fmt(s.lagSeconds, 1)), ' s'),
        h('span', {}, 'rate ', h('b', { 'data-field': 'rate' }, fmt(s.ratePerSec, 1)), ' /s'),
        h('span', {}, 'errors ', h('b', { 'data-field': 'errors' }, fmt(s.errors))),
        h('span', {}, 'retries ', h('b', {}, fmt(s.retries))),
        h('span', {}, 'dead letters ', h('b', { 'data-field': 'deadLetters' },
          Object.entries(s.deadLetters).map(([k, v]) => k + ' ' + v).join(', ') || '0'))),
      h('table', {},
        h('thead', {}, h('tr', {}, ['topic', 'partition', 'committed', 'end', 'lag', 'oldest s', 'rate /s',
          'errors', 'state'].map((c, i) => h('th', { class: i > 0 && i < 8 ? 'num' : '' }, c)))),
        h('tbody', {}, s.partitions.map((p) => h('tr', {
            class: p.stalled ? 'stalled' : '', 'data-partition': p.topic + '/' + p.partition,
            'data-stalled': p.stalled ? 'true' : 'false' },
          h('td', {}, p.topic), h('td', { class: 'num' }, p.partition),
          h('td', { class: 'num' }, p.committed === null ? '–' : p.committed), h('td', { class: 'num' }, p.end),
          h('td', { class: 'num', 'data-field': 'lag' }, fmt(p.lag)),
          h('td', { class: 'num' }, fmt(p.lagSeconds, 1)), h('td', { class: 'num' }, fmt(p.ratePerSec, 1)),
          h('td', { class: 'num' }, fmt(p.errors)),
          h('td', {}, p.stalled ? 'stalled ' + Math.round(p.stuckForMs / 1000) + ' s' : p.lag > 0 ? 'catching up' : 'ok'))))))));
    const select = $('letter-stage');
    const names = data.stages.map((s) => s.name);
    if (select.options.length !== names.length || names.some((n, i) => select.options[i].value !== n)) {
      select.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
      if (names.includes(selectedStage)) select.value = selectedStage;
    }
    selectedStage = select.value;
  }

  async function redrive(stage, key, button) {
    button.disabled = true;
    try {
      const r = await api('/ops/api/dead-letters/' + encodeURIComponent(stage) + '/redrive', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify(key === undefined ? {} : { key }) });
      $('redrive-result').textContent = 're-drove ' + r.redriven + ' letter(s)' + (key ? ' of ' + key : '') +
        (r.skipped.length ? ', skipped ' + r.skipped.length : '');
    } catch (err) {
      $('redrive-result').textContent = 're-drive failed: ' + err.message;
    }
    await refresh();
  }

  function renderLetters(stage, data) {
    const root = $('letters');
    $('redrive-all').disabled = !data || data.letters.every((l) => l.status === 'redriven' || l.key === null);
    if (!data || !data.letters.length) {
      root.replaceChildren(h('p', { class: 'empty', 'data-testid': 'no-letters' }, 'no open dead letters'));
      return;
    }
    root.replaceChildren(h('table', {},
      h('thead', {}, h('tr', {}, ['key', 'event', 'from', 'code', 'error', 'attempts', 'status', 'dead at', '']
        .map((c) => h('th', {}, c)))),
      h('tbody', {}, data.letters.map((l) => h('tr', { 'data-letter': l.id, 'data-key': l.key || '' },
        h('td', {}, l.key === null ? '(no key)' : l.key), h('td', {}, l.eventId),
        h('td', {}, l.topic + '/' + l.partition + '@' + l.offset), h('td', { 'data-field': 'code' }, l.code),
        h('td', { class: 'msg' }, l.message), h('td', { class: 'num' }, l.attempts), h('td', {}, l.status),
        h('td', {}, when(l.deadAt)),
        h('td', {}, h('button', { disabled: l.key === null || l.status === 'redriven', 'data-action': 'redrive',
          onclick: (e) => redrive(stage, l.key, e.currentTarget) }, 're-drive key')))))));
  }

  function renderBatches(data) {
    const root = $('batches');
    if (!data.available) {
      root.replaceChildren(h('p', { class: 'empty' }, 'batches are not reported by this processor yet'));
      return;
    }
    if (!data.batches.length) { root.replaceChildren(h('p', { class: 'empty' }, 'no batches')); return; }
    root.replaceChildren(h('table', {},
      h('thead', {}, h('tr', {}, ['batch', 'status', 'progress', 'failed'].map((c) => h('th', {}, c)))),
      h('tbody', {}, data.batches.map((b) => h('tr', {},
        h('td', {}, b.id), h('td', {}, b.status),
        h('td', {}, h('progress', { max: b.total || 1, value: b.done }), ' ', b.done + ' / ' + b.total),
        h('td', { class: 'num' }, b.failed))))));
  }

  function renderOutOfOrder(data) {
    const root = $('out-of-order');
    if (!data.stages.length) {
      root.replaceChildren(h('p', { class: 'empty' }, 'no out-of-order events recorded'));
      return;
    }
    root.replaceChildren(
      h('table', {},
        h('thead', {}, h('tr', {}, ['stage', 'detected', 'corrected', 'by outcome'].map((c) => h('th', {}, c)))),
        h('tbody', {}, data.stages.map((s) => h('tr', { 'data-ooo-stage': s.stage },
          h('td', {}, s.stage), h('td', { class: 'num', 'data-field': 'detected' }, s.detected),
          h('td', { class: 'num', 'data-field': 'corrected' }, s.corrected),
          h('td', {}, Object.entries(s.outcomes).map(([k, v]) => k + ' ' + v).join(', ')))))),
      h('h3', {}, 'latest'),
      h('table', {},
        h('thead', {}, h('tr', {}, ['stage', 'key', 'event', 'tenant', 'occurred', 'consumed', 'outcome']
          .map((c) => h('th', {}, c)))),
        h('tbody', {}, data.records.map((r) => h('tr', {},
          h('td', {}, r.stage), h('td', {}, r.key), h('td', {}, r.eventId), h('td', {}, r.tenantId || '–'),
          h('td', {}, when(r.occurredAt)), h('td', {}, when(r.consumedAt)), h('td', {}, r.outcome))))));
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const [stages, ooo, batches] = await Promise.all([
        api('/ops/api/stages'), api('/ops/api/out-of-order?limit=20'), api('/ops/api/batches')]);
      renderStages(stages);
      const letters = selectedStage
        ? await api('/ops/api/dead-letters?stage=' + encodeURIComponent(selectedStage)) : undefined;
      renderLetters(selectedStage, letters);
      renderBatches(batches);
      renderOutOfOrder(ooo);
      const status = $('status');
      status.className = stages.error ? 'bad' : '';
      status.textContent = 'updated ' + when(Date.now()) + ' · lag polled ' + when(stages.at) +
        (stages.error ? ' · lag poll failing: ' + stages.error : '');
      document.body.dataset.refreshedAt = String(Date.now());
    } catch (err) {
      $('status').className = 'bad';
      $('status').textContent = 'refresh failed: ' + err.message;
    } finally {
      busy = false;
    }
  }

  $('letter-stage').addEventListener('change', (e) => { selectedStage = e.target.value; void refresh(); });
  $('redrive-all').addEventListener('click', (e) => redrive(selectedStage, undefined, e.currentTarget));
  void refresh();
  setInterval(refresh, REFRESH_MS);
})();
`;

export const OPS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keyflow ops</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>Keyflow ops</h1><span id="status">loading…</span></header>
<main>
  <section><h2>Stages</h2><div id="stages"><p class="empty">loading…</p></div></section>
  <section>
    <h2>Dead letters</h2>
    <p>stage <select id="letter-stage"></select> <button id="redrive-all" disabled>re-drive all</button>
      <span id="redrive-result" class="msg"></span></p>
    <div id="letters"></div>
  </section>
  <section><h2>Batches</h2><div id="batches"><p class="empty">loading…</p></div></section>
  <section><h2>Out-of-order events</h2><div id="out-of-order"><p class="empty">loading…</p></div></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
