// Talking to the studio server, and putting its messages next to the fields they concern.

export async function request(method, url, body, headers = {}) {
  const options = { method, headers: { ...headers } };
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    options.body = body;
  } else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    return { ok: false, status: 0, data: { errors: [{ field: "general", message: `the studio server did not answer (${err})` }] } };
  }
  const text = await response.text();
  let data;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { errors: [{ field: "general", message: text.slice(0, 300) }] };
  }
  if (!response.ok && !data.errors) {
    // FastAPI's own refusals (a malformed body) come as {detail: ...}
    data = { errors: [{ field: "general", message: JSON.stringify(data.detail ?? data).slice(0, 300) }] };
  }
  return { ok: response.ok, status: response.status, data };
}

// A message goes to the element whose data-field is the longest prefix of its field
// ("objects.0.path.keyframes.points" -> data-field="objects.0.path"), else to "general".
// Each channel (preview, upload, generate, load) replaces only its own messages.
export function showProblems(channel, problems, kind = "error") {
  const holder = kind === "error" ? ".err" : "#warnings";
  document.querySelectorAll(`${holder} p[data-channel="${channel}"]`).forEach((p) => p.remove());
  const targets = [...document.querySelectorAll(".err[data-field]")];
  for (const { field, message } of problems || []) {
    let best = null;
    if (kind === "error") {
      for (const el of targets) {
        const f = el.dataset.field;
        if ((field === f || field.startsWith(f + ".")) && (!best || f.length > best.dataset.field.length)) best = el;
      }
      best = best || document.querySelector('.err[data-field="general"]');
    } else {
      best = document.getElementById("warnings");
    }
    const p = document.createElement("p");
    p.dataset.channel = channel;
    // the spec's deeper keys are said as the YAML check says them ("objects.0.path.points: ..."); a field's own message is said bare
    const deeper = kind === "error" && best.dataset.field !== field && !message.startsWith(field);
    p.textContent = deeper ? `${field}: ${message}` : message;
    best.appendChild(p);
  }
}

export function clearChannel(channel) {
  showProblems(channel, []);
  showProblems(channel, [], "warning");
}
