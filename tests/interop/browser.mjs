// Debian's Chromium, headless, driven over the DevTools protocol by
// playwright-core (never a downloaded browser). Shared by the browser tests.
//
// SPDX-License-Identifier: MIT

import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { atExit } from './relay.mjs';

const exe = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * Launch the browser, closed at exit. Resolves to the browser, or to a
 * string saying why it cannot run (the caller skips with it).
 */
export async function launchChromium() {
	if (!existsSync(exe))
		return `chromium not installable: ${exe} not found (bash .ci/deps.sh test installs Debian's chromium)`;
	let browser;
	try {
		browser = await chromium.launch({
			executablePath: exe,
			headless: true,
			chromiumSandbox: false, // root in a container: --no-sandbox
			timeout: 30000,
			args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
				'--disable-component-update', '--disable-sync', '--no-proxy-server', '--disable-dev-shm-usage'],
		});
	} catch (e) {
		return `chromium cannot start: ${String(e.message || e).split('\n').slice(0, 6).join(' | ')}`;
	}
	atExit(() => browser.close());
	console.log(`chromium ${browser.version()}`);
	return browser;
}
