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

// Live session: take a ticket, join the relay, show every frame and the session's state.
for (const el of document.querySelectorAll('[data-relay]')) {
  const log = el.querySelector('[data-log]');
  const state = el.querySelector('[data-state]');
  const form = el.querySelector('form[data-signal]');
  const show = (direction, text) => {
    const li = document.createElement('li');
    li.textContent = `${direction} ${text}`;
    log.append(li);
    log.scrollTop = log.scrollHeight;
  };
  const setState = (text) => { state.textContent = text; state.dataset.status = text; };
  let socket;
  const connect = async () => {
    setState('connecting');
    const r = await fetch(el.dataset.ticketUrl, { method: 'POST', headers: { 'x-csrf-token': csrf() }, credentials: 'same-origin' });
    const answer = await r.json().catch(() => ({}));
    if (!r.ok) { setState('refused'); show('!', answer.message ?? `HTTP ${r.status}`); return; }
    socket = new WebSocket(`${answer.ws_url}?ticket=${encodeURIComponent(answer.ticket)}`);
    socket.addEventListener('open', () => setState('connected'));
    socket.addEventListener('message', (m) => {
      show('←', m.data);
      try {
        const frame = JSON.parse(m.data);
        if (frame.type === 'state' && frame.state) setState(frame.state);
      } catch { /* not JSON: shown as it is */ }
    });
    socket.addEventListener('close', (c) => setState(c.code === 1000 ? 'ended' : `closed (${c.code})`));
  };
  form?.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = form.elements.signal.value;
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    let data;
    try { data = JSON.parse(text); } catch { data = text; }
    const frame = JSON.stringify({ type: 'signal', data });
    socket.send(frame);
    show('→', frame);
  });
  el.querySelector('[data-connect]')?.addEventListener('click', connect);
  if (el.dataset.autoconnect !== undefined) connect();
}
