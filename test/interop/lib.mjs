// Helpers for the interop tests: start the real hendelse binary on port 0 with a temporary data
// directory, a recording webhook receiver (node:http), and small HTTP helpers around fetch.
//
// The binary comes from HENDELSE_BIN, else build/server/hendelse under the repository root.

import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, "..", "..");
const READY_RE = /^hendelse listening on (https?):\/\/127\.0\.0\.1:(\d+)$/;
const SANITIZER_MARKERS = ["ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"];

export const PUBLISH_PATH = "/events/api/v1/events";
export const SUBS_PATH = "/events/api/v1/subscriptions";
export const HANDSHAKE_TYPE = "platform.events.validatesubscription";

export function binary() {
  return process.env.HENDELSE_BIN || path.join(REPO_ROOT, "build", "server", "hendelse");
}

export function freshResource(prefix = "interop") {
  return `urn:altinn:resource:${prefix}-${randomUUID().replace(/-/g, "").slice(0, 16)}`;
}

export function newSigningSecret(nbytes = 32) {
  return "whsec_" + randomBytes(nbytes).toString("base64");
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// the server

export async function startServer(extraArgs = []) {
  const dir = mkdtempSync(path.join(tmpdir(), "hendelse-interop-"));
  const stderrPath = path.join(dir, "stderr.log");
  const args = [
    "serve", "--listen", "127.0.0.1:0", "--data", path.join(dir, "data"),
    "--dev", "--auth", "none", "--authz", "allow-all",
    "--retry-schedule", "300ms,300ms,300ms", "--validation-schedule", "100ms,100ms,100ms",
    ...extraArgs,
  ];
  const errFd = openSync(stderrPath, "w");
  const proc = spawn(binary(), args, { stdio: ["ignore", "pipe", errFd] });
  closeSync(errFd);
  const stderr = () => {
    try { return readFileSync(stderrPath, "utf8"); } catch { return ""; }
  };
  const line = await new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`no ready line within 10 s; stderr:\n${stderr()}`)), 10000);
    proc.on("error", (e) => { clearTimeout(timer); reject(e); });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`hendelse exited with ${code} before the ready line; stderr:\n${stderr()}`));
    });
    proc.stdout.on("data", function onData(chunk) {
      buf += chunk.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        proc.stdout.off("data", onData);
        proc.stdout.resume(); // keep draining
        resolve(buf.slice(0, nl).replace(/\r$/, ""));
      }
    });
  });
  proc.removeAllListeners("exit");
  const m = READY_RE.exec(line);
  if (!m) {
    proc.kill("SIGKILL");
    throw new Error(`first line is not the ready line: ${JSON.stringify(line)}`);
  }
  const port = Number(m[2]);
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    port,
    baseUrl,
    proc,
    stderr,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 15000);
        await exited;
        clearTimeout(t);
      }
      const text = stderr();
      rmSync(dir, { recursive: true, force: true });
      for (const marker of SANITIZER_MARKERS) {
        const i = text.indexOf(marker);
        if (i >= 0) throw new Error(`sanitizer report in server stderr:\n${text.slice(Math.max(0, i - 2000), i + 6000)}`);
      }
    },
    async request(method, p, { body, headers = {} } = {}) {
      const res = await fetch(baseUrl + p, { method, body, headers });
      const buf = Buffer.from(await res.arrayBuffer());
      return { status: res.status, headers: res.headers, body: buf, text: buf.toString("utf8") };
    },
    // A message {headers, body} as the SDK's serializers make it.
    async publishMessage(message) {
      return this.request("POST", PUBLISH_PATH, { body: message.body, headers: message.headers });
    },
    async poll(resource) {
      const r = await this.request("GET", `${PUBLISH_PATH}?resource=${resource}&after=0&size=1000`);
      if (r.status !== 200) throw new Error(`poll: ${r.status} ${r.text}`);
      return { events: JSON.parse(r.text), response: r };
    },
    async createSubscription(body) {
      const r = await this.request("POST", SUBS_PATH, {
        body: JSON.stringify(body), headers: { "content-type": "application/json" },
      });
      return { status: r.status, json: r.text ? JSON.parse(r.text) : null, text: r.text };
    },
    async getSubscription(id) {
      const r = await this.request("GET", `${SUBS_PATH}/${id}`);
      return { status: r.status, json: r.text ? JSON.parse(r.text) : null, text: r.text };
    },
    // Creates a subscription and waits until it is validated; returns the subscription JSON.
    async subscribe(body) {
      const c = await this.createSubscription(body);
      if (c.status !== 201) throw new Error(`create subscription: ${c.status} ${c.text}`);
      const deadline = Date.now() + 10000;
      for (;;) {
        const g = await this.getSubscription(c.json.id);
        if (g.status === 200 && g.json.validated === true) return g.json;
        if (Date.now() > deadline) throw new Error(`subscription never validated: ${g.text}`);
        await sleep(50);
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// the receiver

// A recording webhook receiver on 127.0.0.1:0. Every request is recorded as
// {method, url, headers (lower-case names), rawHeaders, body (Buffer), t (ms, performance.now())}.
// answer(req) decides the status (default 200); set per path with receiver.answers.set(path, fn).
export async function startReceiver() {
  const requests = [];
  const waiters = new Set();
  const answers = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const rec = {
        method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks), t: performance.now(),
      };
      rec.isHandshake = isHandshake(rec);
      requests.push(rec);
      for (const w of [...waiters]) w();
      const fn = answers.get(req.url.split("?")[0]);
      const a = (fn && fn(rec)) || { status: 200 };
      res.writeHead(a.status, a.headers || {});
      res.end(a.body || "");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  return {
    port,
    answers,
    requests,
    url(p) { return `http://127.0.0.1:${port}${p}`; },
    uniquePath(prefix = "hook") { return `/${prefix}-${randomUUID().slice(0, 12)}`; },
    on(p, kind) {
      return requests.filter((r) => r.url.split("?")[0] === p &&
        (kind === undefined || (kind === "handshake") === r.isHandshake));
    },
    // Waits until count requests on path (of kind "handshake"/"event", if given) arrived; returns them
    // either way after timeout ms (the caller asserts).
    async waitFor(p, count, kind, timeout = 10000) {
      const deadline = Date.now() + timeout;
      for (;;) {
        const got = this.on(p, kind);
        const left = deadline - Date.now();
        if (got.length >= count || left <= 0) return got;
        await new Promise((resolve) => {
          const t = setTimeout(done, Math.min(left, 200));
          function done() { clearTimeout(t); waiters.delete(done); resolve(); }
          waiters.add(done);
        });
      }
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((r) => server.close(r));
    },
  };
}

function isHandshake(rec) {
  try {
    const doc = JSON.parse(rec.body.toString("utf8"));
    return doc !== null && typeof doc === "object" && doc.type === HANDSHAKE_TYPE;
  } catch {
    return false;
  }
}

// The body of a received request as the SDK's HTTP.toEvent wants it: a string for JSON and text
// media types, the raw bytes otherwise, nothing for an empty body.
export function messageOf(rec) {
  const ct = (rec.headers["content-type"] || "").toLowerCase();
  const textual = /json/.test(ct) || ct.startsWith("text/");
  if (rec.body.length === 0) return { headers: rec.headers, body: undefined }; // no data
  return { headers: rec.headers, body: textual ? rec.body.toString("utf8") : rec.body };
}
