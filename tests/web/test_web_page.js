// Drives the `hotyolo serve` web page (GET /) in headless Chromium over the Chrome DevTools
// Protocol: readiness, model list, upload of bus.jpg, the detection table against Ultralytics'
// reference, the canvas, a PNG sample, an error, a screenshot. No npm packages.
// Usage: node --experimental-websocket test_web_page.js DEVTOOLS_PORT SERVER_URL ASSETS_DIR SCREENSHOT.png
// Prints "ok   NAME" / "FAIL NAME" lines; the calling script counts them. Exit 0 iff no FAIL.
"use strict";
const fs = require("fs");
const path = require("path");

const [devtoolsPort, serverUrl, assets, shotPath] = process.argv.slice(2);
if (!shotPath) {
  console.error("usage: test_web_page.js DEVTOOLS_PORT SERVER_URL ASSETS_DIR SCREENSHOT.png");
  process.exit(2);
}
if (typeof WebSocket !== "function") {
  console.error("FAIL no global WebSocket: run node (>= 20.10) with --experimental-websocket");
  process.exit(2);
}

let failures = 0;
function check(name, cond, detail) {
  if (cond) console.log("ok   " + name);
  else {
    failures++;
    console.log("FAIL " + name + (detail !== undefined ? "\n     " + String(detail).slice(0, 1500) : ""));
  }
  return cond;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Ultralytics' palette (ultralytics/utils/plotting.py Colors), by class id % 20.
const PALETTE = ["FF3838", "FF9D97", "FF701F", "FFB21D", "CFD231", "48F90A", "92CC17", "3DDB86",
  "1A9334", "00D4BB", "2C99A8", "00C2FF", "344593", "6473FF", "0018EC", "8438FF", "520085",
  "CB38FF", "FF95C8", "FF37C7"].map((h) => [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)));

// --- minimal CDP client: one WebSocket to the page target ------------------------------------
class Cdp {
  constructor(ws) {
    this.ws = ws;
    this.id = 0;
    this.pending = new Map();
    this.events = [];
    ws.addEventListener("message", (ev) => {
      const m = JSON.parse(ev.data);
      if (m.id !== undefined && this.pending.has(m.id)) {
        const { ok, fail } = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) fail(new Error(m.error.message + (m.error.data ? ": " + m.error.data : "")));
        else ok(m.result);
      } else if (m.method) this.events.push(m);
    });
  }
  static async connect(url) {
    const ws = new WebSocket(url);
    await new Promise((ok, fail) => {
      ws.addEventListener("open", ok, { once: true });
      ws.addEventListener("error", () => fail(new Error("WebSocket connect failed: " + url)), { once: true });
    });
    return new Cdp(ws);
  }
  send(method, params = {}, timeoutMs = 30000) {
    const id = ++this.id;
    this.ws.send(JSON.stringify({ id, method, params }));
    return new Promise((ok, fail) => {
      const t = setTimeout(() => { this.pending.delete(id); fail(new Error(method + " timed out")); }, timeoutMs);
      this.pending.set(id, { ok: (r) => { clearTimeout(t); ok(r); }, fail: (e) => { clearTimeout(t); fail(e); } });
    });
  }
  // Evaluates EXPR in the page (awaiting promises) and returns its JSON value.
  async eval(expr) {
    const r = await this.send("Runtime.evaluate", { expression: expr, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error("page threw: " + JSON.stringify(r.exceptionDetails).slice(0, 500));
    return r.result.value;
  }
  // Polls EXPR until it is truthy; returns the value or null after timeoutMs.
  async waitFor(expr, timeoutMs) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.eval(expr);
      if (v) return v;
      if (Date.now() > end) return null;
      await sleep(100);
    }
  }
}

function iou(a, b) {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return ua > 0 ? inter / ua : 0;
}

// The table rows as [{cls, conf, box}] (box parsed from the "x1, y1, x2, y2" cell).
const ROWS = `JSON.stringify([...document.querySelectorAll("#detections tbody tr")].map((tr) => ({
  cls: tr.querySelector(".class").textContent.trim(), id: Number(tr.dataset.classId),
  conf: Number(tr.querySelector(".confidence").textContent),
  box: tr.querySelector(".box").textContent.split(",").map(Number) })))`;

// Clicks BUTTON and waits for the page to finish (body data-state done/error).
async function clickAndWait(cdp, button, timeoutMs) {
  await cdp.eval(`document.body.dataset.state = "idle"; document.getElementById("${button}").click(); true`);
  return cdp.waitFor(`["done", "error"].includes(document.body.dataset.state) && document.body.dataset.state`, timeoutMs);
}

async function main() {
  // The page target of the browser started by the calling script.
  let targets = null;
  for (let i = 0; i < 50 && !targets; i++) {
    try {
      const list = await (await fetch(`http://127.0.0.1:${devtoolsPort}/json/list`)).json();
      if (list.some((t) => t.type === "page")) targets = list;
    } catch (_) { /* browser still starting */ }
    if (!targets) await sleep(200);
  }
  if (!check("chromium DevTools endpoint lists a page", targets)) return;
  const cdp = await Cdp.connect(targets.find((t) => t.type === "page").webSocketDebuggerUrl);
  await cdp.send("Page.enable");
  await cdp.send("Runtime.enable");
  await cdp.send("Network.enable");
  await cdp.send("Emulation.setDeviceMetricsOverride", { width: 1280, height: 1000, deviceScaleFactor: 1, mobile: false });

  await cdp.send("Page.navigate", { url: serverUrl + "/" });
  const loaded = await cdp.waitFor(`document.readyState === "complete" && location.href`, 15000);
  check("page loads from " + serverUrl + "/", loaded && loaded.startsWith(serverUrl), loaded);
  check("page title is hotyolo", (await cdp.eval("document.title")) === "hotyolo");

  // Readiness: the status badge turns green and the selector lists the pinned model.
  const state = await cdp.waitFor(`document.getElementById("status").dataset.state === "ready" && "ready"`, 30000);
  check("status badge shows ready", state === "ready",
    await cdp.eval(`document.getElementById("status").outerHTML`));
  const models = await cdp.waitFor(`document.getElementById("model").options.length > 0 &&
    [...document.getElementById("model").options].map((o) => o.value)`, 10000);
  check("model selector lists yolov8n", Array.isArray(models) && models.includes("yolov8n"), JSON.stringify(models));

  // Upload bus.jpg through the file input, as a user would.
  const doc = await cdp.send("DOM.getDocument");
  const input = await cdp.send("DOM.querySelector", { nodeId: doc.root.nodeId, selector: "#file" });
  await cdp.send("DOM.setFileInputFiles", { nodeId: input.nodeId, files: [path.join(assets, "images/bus.jpg")] });
  await cdp.eval(`document.getElementById("model").value = "yolov8n"; true`);
  const done = await clickAndWait(cdp, "detect", 60000);
  check("Detect on bus.jpg completes without error", done === "done",
    done + " " + (await cdp.eval(`document.getElementById("error").textContent`)));

  // The table against Ultralytics' reference for bus.jpg (class equal, IoU >= 0.95, conf within 0.02).
  const ref = fs.readFileSync(path.join(assets, "reference/yolov8n_predict_images.jsonl"), "utf8")
    .split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.image === "images/bus.jpg");
  const rows = JSON.parse(await cdp.eval(ROWS));
  check(`table has ${ref.detections.length} rows (reference)`, rows.length === ref.detections.length, JSON.stringify(rows));
  const used = new Set();
  let matched = 0;
  for (const d of ref.detections) {
    const j = rows.findIndex((r, k) => !used.has(k) && r.cls === d.class_name && r.id === d.class_id &&
      Math.abs(r.conf - d.confidence) <= 0.02 && iou(r.box, d.box) >= 0.95);
    if (j >= 0) { used.add(j); matched++; }
  }
  check("every reference detection is in the table (class, IoU >= 0.95, conf +-0.02)",
    matched === ref.detections.length, JSON.stringify({ rows, ref: ref.detections }));
  check("table counts 4 person + 1 bus", rows.filter((r) => r.cls === "person").length === 4 &&
    rows.filter((r) => r.cls === "bus").length === 1);
  const summary = await cdp.eval(`document.getElementById("summary").textContent`);
  check("summary names the count and the image size", /5 detections/.test(summary) && /810.1080/.test(summary), summary);
  const timings = await cdp.eval(`document.getElementById("timings").textContent`);
  check("timings are shown", /\d+(\.\d+)? ms/.test(timings), timings);

  // Canvas: the image at its own size; the bus box's left edge in the bus palette colour.
  const cv = await cdp.eval(`(() => { const c = document.getElementById("canvas"), g = c.getContext("2d");
    const px = (x, y) => [...g.getImageData(x, y, 1, 1).data];
    const bus = ${JSON.stringify(ref.detections.find((d) => d.class_name === "bus").box)};
    const mid = g.getImageData(0, 0, c.width, c.height).data;
    let lo = 255, hi = 0; for (let i = 0; i < mid.length; i += 4 * 997) { lo = Math.min(lo, mid[i]); hi = Math.max(hi, mid[i]); }
    return { w: c.width, h: c.height, centre: px(c.width >> 1, c.height >> 1), range: hi - lo,
      edge: px(Math.round(bus[0]), Math.round(bus[1] + 0.2 * (bus[3] - bus[1]))) }; })()`);
  check("canvas is 810x1080 (bus.jpg)", cv.w === 810 && cv.h === 1080, JSON.stringify(cv));
  check("canvas holds the photo (opaque, varied pixels)", cv.centre[3] === 255 && cv.range > 100, JSON.stringify(cv));
  const want = PALETTE[5];
  check("bus box drawn in Ultralytics' colour for class 5 (#48F90A)",
    want.every((v, i) => Math.abs(v - cv.edge[i]) <= 3) && cv.edge[3] === 255, JSON.stringify(cv.edge));

  // Screenshot of the page with the result.
  const shot = await cdp.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
  const png = Buffer.from(shot.data, "base64");
  fs.writeFileSync(shotPath, png);
  const sig = png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const w = sig ? png.readUInt32BE(16) : 0, h = sig ? png.readUInt32BE(20) : 0;
  check(`screenshot ${shotPath} is a PNG (${w}x${h})`, sig && png.subarray(12, 16).toString() === "IHDR" && w >= 800 && h >= 600);

  // Sample button: a generated PNG goes through the PNG path.
  const sampled = await clickAndWait(cdp, "sample", 60000);
  const sv = await cdp.eval(`[document.getElementById("canvas").width, document.getElementById("canvas").height,
    document.getElementById("summary").textContent, document.getElementById("error").textContent]`);
  check("Sample posts a 320x240 PNG and shows its result", sampled === "done" && sv[0] === 320 && sv[1] === 240 &&
    /320.240/.test(sv[2]) && sv[3] === "", sampled + " " + JSON.stringify(sv));

  // Error path: a body that is not an image gives a visible message and leaves the page usable.
  await cdp.send("DOM.setFileInputFiles", { nodeId: input.nodeId, files: [path.join(assets, "reference/yolov8n_predict_images.jsonl")] });
  const errState = await clickAndWait(cdp, "detect", 30000);
  const errText = await cdp.eval(`document.getElementById("error").textContent`);
  const errVisible = await cdp.eval(`getComputedStyle(document.getElementById("error")).display !== "none"`);
  check("non-image upload shows the server's error", errState === "error" && /HTTP 4\d\d/.test(errText) && errVisible,
    errState + " " + errText);
  check("Detect is enabled again after an error", await cdp.eval(`!document.getElementById("detect").disabled`));

  // Self-contained: every request went to the server; no uncaught exceptions.
  const urls = cdp.events.filter((e) => e.method === "Network.requestWillBeSent").map((e) => e.params.request.url);
  const foreign = urls.filter((u) => !u.startsWith(serverUrl + "/") && !u.startsWith("blob:") && !u.startsWith("data:"));
  check("page requests only its own server", urls.length > 0 && foreign.length === 0, JSON.stringify(foreign));
  const thrown = cdp.events.filter((e) => e.method === "Runtime.exceptionThrown");
  check("no uncaught exceptions in the page", thrown.length === 0, JSON.stringify(thrown).slice(0, 800));
  cdp.ws.close();
}

main().then(() => process.exit(failures ? 1 : 0), (e) => {
  console.log("FAIL driver error: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
