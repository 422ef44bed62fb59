import { Hono } from 'hono';

// A page to try the support assistant: paste a customer API key, talk to POST /chat, see which responder
// answered, the tools it called and a return proposal waiting for its "yes". Plain HTML and one small
// script served from here (no build step, no CDN); its content-security-policy allows 'self' alone,
// like /docs. The page itself needs no key: the key typed in it goes only to POST /chat, from memory,
// and is never stored. Every text from the server is set as text, never as HTML: a reply may quote
// product names or tracking notes that someone else wrote.

const headers = (type: string) => ({
  'content-type': `${type}; charset=utf-8`,
  'content-security-policy':
    "default-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'; object-src 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
});

export function chatDemoRoutes(): Hono {
  const app = new Hono();
  app.get('/chat/demo', (c) => c.body(page, 200, headers('text/html')));
  app.get('/chat/demo/chat.js', (c) => c.body(script, 200, headers('text/javascript')));
  app.get('/chat/demo/chat.css', (c) => c.body(style, 200, headers('text/css')));
  return app;
}

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>orderflow support assistant</title>
<link rel="stylesheet" href="/chat/demo/chat.css">
</head>
<body>
<main>
<h1>Support assistant</h1>
<form id="key-form" autocomplete="off">
  <label for="key">Customer API key</label>
  <input id="key" name="key" type="password" placeholder="of_cus_…" required spellcheck="false">
  <button id="new-session" type="button">New conversation</button>
</form>
<p id="session" class="meta">No conversation yet.</p>
<ol id="transcript" aria-live="polite"></ol>
<form id="message-form" autocomplete="off">
  <label for="message" class="hidden">Message</label>
  <input id="message" name="message" placeholder="Where is my order? Is BERSERK-42 in stock? I want to return…" required>
  <button id="send" type="submit">Send</button>
</form>
<p class="meta">Try: “where is my order?”, “my recent orders”, “is BERSERK-42 in stock?”, “I want to return that one”, then “yes”.</p>
</main>
<script src="/chat/demo/chat.js"></script>
</body>
</html>
`;

const style = `body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d232b; }
main { max-width: 46rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
form { display: flex; gap: .5rem; align-items: center; margin: .5rem 0; }
input { flex: 1; padding: .5rem .6rem; border: 1px solid #b9c0cb; border-radius: 6px; font: inherit; }
button { padding: .5rem .9rem; border: 0; border-radius: 6px; background: #2456c8; color: #fff; font: inherit; cursor: pointer; }
button[disabled] { opacity: .6; cursor: wait; }
#new-session { background: #5b6575; }
.meta { color: #5b6575; font-size: .85rem; margin: .3rem 0; }
.hidden { position: absolute; left: -9999px; }
#transcript { list-style: none; padding: 0; margin: 1rem 0; display: flex; flex-direction: column; gap: .6rem; }
#transcript li { padding: .6rem .8rem; border-radius: 8px; max-width: 85%; white-space: pre-wrap; }
li.user { align-self: flex-end; background: #2456c8; color: #fff; }
li.assistant { align-self: flex-start; background: #fff; border: 1px solid #d7dce3; }
li.error { align-self: stretch; background: #fde8e8; border: 1px solid #e4a5a5; }
.badge { display: inline-block; font-size: .75rem; padding: 0 .4rem; border-radius: 4px; margin-right: .3rem; background: #e6e9ef; color: #333; }
.badge.bedrock { background: #dbe8ff; }
.badge.template { background: #fff1cc; }
.badge.failed { background: #fde0e0; }
.proposal { margin-top: .5rem; padding: .5rem; border: 1px dashed #2456c8; border-radius: 6px; background: #f3f7ff; }
.proposal ul { margin: .3rem 0; padding-left: 1.2rem; }
`;

// A file of its own, not an inline script: the page's policy allows scripts from 'self' only.
const script = `'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const transcript = $('transcript');
  let sessionId;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  const money = (cents, currency) =>
    typeof cents === 'number' ? (cents / 100).toFixed(2) + ' ' + (currency || '') : '';

  function add(node) {
    transcript.append(node);
    node.scrollIntoView({ block: 'end' });
  }

  function showSession() {
    $('session').textContent = sessionId ? 'Conversation ' + sessionId : 'No conversation yet.';
  }

  function showProposal(proposal) {
    const box = el('div', 'proposal');
    box.dataset.testid = 'proposal';
    box.append(el('strong', '', 'Return proposal'));
    const list = el('ul');
    for (const item of proposal.items || []) {
      const refund = money(item.refundCents, proposal.currency);
      list.append(el('li', '', item.quantity + ' × ' + (item.name || item.sku) + (refund ? ' (' + refund + ')' : '')));
    }
    box.append(list);
    if (typeof proposal.refundCents === 'number') box.append(el('div', '', 'Refund: ' + money(proposal.refundCents, proposal.currency)));
    box.append(el('div', 'meta', proposal.hint || 'Reply “yes” to confirm this return; anything else leaves it open.'));
    return box;
  }

  function showAnswer(answer) {
    const item = el('li', 'assistant');
    item.dataset.responder = answer.responder;
    const meta = el('div', 'meta');
    meta.append(el('span', 'badge ' + answer.responder, answer.responder));
    for (const call of answer.toolCalls || []) {
      meta.append(el('span', 'badge tool' + (call.ok ? '' : ' failed'), call.name + (call.ok ? ' ✓' : ' ✗')));
    }
    item.append(meta, el('div', 'reply', answer.reply));
    if (answer.proposal) item.append(showProposal(answer.proposal));
    add(item);
  }

  async function send(message) {
    const key = $('key').value.trim();
    if (!key) {
      add(el('li', 'error', 'Paste a customer API key first.'));
      $('key').focus();
      return;
    }
    add(el('li', 'user', message));
    const response = await fetch('/chat', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + key },
      body: JSON.stringify(sessionId ? { sessionId, message } : { message }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = body.error || {};
      add(el('li', 'error', response.status + ' ' + (error.code || '') + ': ' + (error.message || response.statusText)));
      // An expired or foreign conversation: the next message starts a new one.
      if (response.status === 404) sessionId = undefined;
      showSession();
      return;
    }
    sessionId = body.sessionId;
    showSession();
    showAnswer(body);
  }

  $('message-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('message');
    const message = input.value.trim();
    if (!message) return;
    input.value = '';
    $('send').disabled = true;
    try {
      await send(message);
    } catch (error) {
      add(el('li', 'error', 'The API did not answer: ' + error.message));
    } finally {
      $('send').disabled = false;
      input.focus();
    }
  });
  $('key-form').addEventListener('submit', (event) => event.preventDefault());
  $('new-session').addEventListener('click', () => {
    sessionId = undefined;
    transcript.replaceChildren();
    showSession();
  });
})();
`;
