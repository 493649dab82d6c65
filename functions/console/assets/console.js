// Portico console: progressive enhancement only. Every page works without this script,
// except the live session view, which needs a WebSocket.

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? '';

// Destructive buttons ask first.
document.addEventListener('submit', (event) => {
  const question = event.submitter?.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Job status: refresh the phase until the job is finished, then reload for links and logs.
for (const el of document.querySelectorAll('[data-refresh]')) {
  const tick = async () => {
    try {
      const r = await fetch(el.dataset.refresh, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (!r.ok) return;
      const job = await r.json();
      if (job.phase !== el.dataset.status) {
        el.textContent = job.phase;
        el.dataset.status = job.phase;
      }
      if (job.finished) { window.location.reload(); return; }
    } catch { /* offline for a moment: try again */ }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 1000);
}

// Live session: take a ticket, join the relay, show every frame and the connection's state.
// The relay's protocol: say hello once open; it answers welcome (peer: whether the app is
// there), peer_joined, peer_left, session_ended, error; signals are {type: 'signal', data}.
const STATES = { peer_joined: 'connected', peer_left: 'waiting for the app', session_ended: 'ended' };
for (const el of document.querySelectorAll('[data-relay]')) {
  const log = el.querySelector('[data-log]');
  const state = el.querySelector('[data-state]');
  const form = el.querySelector('form[data-signal]');
  const fields = form?.querySelector('fieldset');
  const button = el.querySelector('[data-connect]');
  const show = (direction, text) => {
    const li = document.createElement('li');
    li.textContent = `${direction} ${text}`;
    log.append(li);
    log.scrollTop = log.scrollHeight;
  };
  const setState = (text) => { state.textContent = text; state.dataset.status = text; };
  const joined = (yes) => {
    if (fields) fields.disabled = !yes;
    if (button) button.disabled = yes || state.dataset.status === 'ended';
  };
  let socket;
  const connect = async () => {
    if (socket && socket.readyState <= WebSocket.OPEN) return;
    if (button) button.disabled = true;
    setState('connecting');
    let r; let answer = {};
    try {
      r = await fetch(el.dataset.ticketUrl, { method: 'POST', headers: { 'x-csrf-token': csrf() }, credentials: 'same-origin' });
      answer = await r.json().catch(() => ({}));
    } catch { /* offline: said below */ }
    if (!r?.ok || !answer.ws_url) {
      setState('refused');
      show('!', answer.message ?? (r ? `HTTP ${r.status}` : 'the console cannot be reached'));
      joined(false);
      return;
    }
    const url = new URL(answer.ws_url, window.location.href);
    url.searchParams.set('ticket', answer.ticket);
    const ws = new WebSocket(url);
    socket = ws;
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({ type: 'hello' }));
      setState('waiting for the app');
      joined(true);
    });
    ws.addEventListener('message', (m) => {
      show('←', m.data);
      let frame;
      try { frame = JSON.parse(m.data); } catch { return; /* not JSON: shown as it is */ }
      const next = frame.type === 'welcome' ? (frame.peer ? 'connected' : 'waiting for the app') : STATES[frame.type];
      if (next) setState(next);
    });
    ws.addEventListener('close', (c) => {
      if (state.dataset.status !== 'ended') setState(c.code === 1000 ? 'ended' : `disconnected (${c.code})`);
      joined(false);
    });
  };
  form?.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN) { show('!', 'not connected'); return; }
    const text = form.elements.signal.value;
    let data;
    try { data = JSON.parse(text); } catch { data = text; }
    const frame = JSON.stringify({ type: 'signal', data });
    socket.send(frame);
    show('→', frame);
  });
  button?.addEventListener('click', connect);
  if (el.dataset.autoconnect !== undefined) connect();
}

// An app icon that cannot load (offline, moved) gives way to the title's initial.
for (const img of document.querySelectorAll('img.icon')) {
  const fallback = () => {
    const span = document.createElement('span');
    span.className = 'icon placeholder';
    span.setAttribute('aria-hidden', 'true');
    span.textContent = img.dataset.initial ?? '?';
    img.replaceWith(span);
  };
  if (img.complete && img.naturalWidth === 0) fallback();
  else img.addEventListener('error', fallback);
}
