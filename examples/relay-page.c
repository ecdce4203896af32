/*
 * sse-relay: the page served at /, to watch the stream and publish to
 * it from a browser. Open http://127.0.0.1:PORT/ (add ?type=NAME, once or
 * more, to also show events of type NAME published by others).
 *
 * Event text is shown with textContent, never innerHTML: anyone who may
 * publish could otherwise run script in every viewer's page.
 *
 * ISO C guarantees string literals of only 4095 bytes (gcc -pedantic
 * warns past that), so the page stays small.
 *
 * SPDX-License-Identifier: MIT
 */
#include "relay.h"

const char relay_page[] =
	"<!doctype html>\n"
	"<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
	"<title>sse-relay</title>\n"
	"<style>\n"
	"body{font:15px/1.4 system-ui,sans-serif;max-width:50em;margin:1em auto;padding:0 1em}\n"
	"form{display:grid;gap:.4em}\n"
	"#state.open{color:#070}#state.connecting{color:#a50}#state.closed{color:#b00}\n"
	"ol{padding:0;list-style:none}li{border-top:1px solid #ddd;padding:.3em 0}\n"
	"li.sse-reset{background:#fee}small{color:#666}\n"
	"pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}\n"
	"</style></head><body>\n"
	"<h1>sse-relay</h1>\n"
	"<p><code>/events</code>: <b id=\"state\" class=\"connecting\">connecting</b></p>\n"
	"<p class=\"hint\">Shows plain messages, resets and the types you publish here;\n"
	"to watch a type others publish, open <code>/?type=NAME</code>.</p>\n"
	"<form id=\"form\">\n"
	"<label>Event type (empty: message) <input id=\"type\"></label>\n"
	"<label>Data<br><textarea id=\"data\" rows=\"3\" cols=\"40\">hello</textarea></label>\n"
	"<label>Token (if started with --token) <input id=\"token\" type=\"password\"></label>\n"
	"<p><button>Publish</button> <span id=\"result\"></span></p>\n"
	"</form>\n"
	"<ol id=\"events\"></ol>\n"
	"<script>\n"
	"\"use strict\";\n"
	"const $ = (id) => document.getElementById(id);\n"
	"const source = new EventSource(\"/events\");\n"
	"const types = new Set();\n"
	"\n"
	"function show(ev) {\n"
	"  const li = document.createElement(\"li\");\n"
	"  const meta = document.createElement(\"small\");\n"
	"  const data = document.createElement(\"pre\");\n"
	"  meta.textContent = ev.type + \"  id \" + (ev.lastEventId || \"(none)\");\n"
	"  data.textContent = ev.data;\n"
	"  li.className = ev.type;\n"
	"  li.append(meta, data);\n"
	"  $(\"events\").append(li);\n"
	"  if ($(\"events\").children.length > 500) $(\"events\").firstChild.remove();\n"
	"}\n"
	"\n"
	"// EventSource hands a named event only to a listener for its type.\n"
	"function listen(type) {\n"
	"  if (types.has(type)) return;\n"
	"  types.add(type);\n"
	"  source.addEventListener(type, show);\n"
	"}\n"
	"\n"
	"function setState(s) {\n"
	"  $(\"state\").textContent = s;\n"
	"  $(\"state\").className = s;\n"
	"}\n"
	"\n"
	"[\"message\", \"sse-reset\"].forEach(listen);\n"
	"new URLSearchParams(location.search).getAll(\"type\").forEach(listen);\n"
	"source.onopen = () => setState(\"open\");\n"
	"source.onerror = () =>\n"
	"  setState(source.readyState === EventSource.CLOSED ? \"closed\" : \"connecting\");\n"
	"\n"
	"$(\"form\").addEventListener(\"submit\", async (e) => {\n"
	"  e.preventDefault();\n"
	"  const type = $(\"type\").value, token = $(\"token\").value;\n"
	"  const headers = {\"Content-Type\": \"text/plain; charset=utf-8\"};\n"
	"  if (token) headers.Authorization = \"Bearer \" + token;\n"
	"  if (type) listen(type);\n"
	"  const url = \"/publish\" + (type ? \"?event=\" + encodeURIComponent(type) : \"\");\n"
	"  try {\n"
	"    const res = await fetch(url, {method: \"POST\", headers, body: $(\"data\").value});\n"
	"    const text = (await res.text()).trim();\n"
	"    $(\"result\").textContent = res.ok ? \"published, id \" + text : res.status + \" \" + text;\n"
	"  } catch (err) {\n"
	"    $(\"result\").textContent = \"failed: \" + err;\n"
	"  }\n"
	"});\n"
	"</script>\n"
	"</body></html>\n";

const size_t relay_page_len = sizeof(relay_page) - 1;
