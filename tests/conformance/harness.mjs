// Starts the mock provider and the gateway for one test file, and stops them.
//
// Paths come from SLUICE_MOCK and SLUICE_GATEWAY (set by ctest); when unset,
// the Debug+ASan tree at build/conf and then build/test is tried, so a
// developer can run `node --test` in this folder by hand.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

function findBinary(envName, rel) {
    if (process.env[envName]) return process.env[envName];
    for (const tree of ['build/conf', 'build/test', 'build/release']) {
        const p = join(root, tree, rel);
        if (existsSync(p)) return p;
    }
    throw new Error(`${envName} is not set and no ${rel} was found under build/`);
}

const START_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 5000;

// Spawns a program that prints "listening on HOST:PORT" once ready.
function startServer(name, path, args) {
    return new Promise((resolve, reject) => {
        const child = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        let done = false;
        const timer = setTimeout(() => {
            if (done) return;
            done = true;
            child.kill('SIGKILL');
            reject(new Error(`${name} did not print its address within ${START_TIMEOUT_MS} ms\n${stderr}`));
        }, START_TIMEOUT_MS);
        child.stdout.setEncoding('utf8');
        child.stderr.setEncoding('utf8');
        child.stderr.on('data', (d) => {
            // Keep the tail only: enough for a sanitizer report.
            stderr = (stderr + d).slice(-65536);
        });
        child.stdout.on('data', (d) => {
            stdout += d;
            const m = /listening on (\S+):(\d+)/.exec(stdout);
            if (m && !done) {
                done = true;
                clearTimeout(timer);
                resolve({
                    name,
                    child,
                    host: m[1],
                    port: Number(m[2]),
                    base: `http://127.0.0.1:${m[2]}`,
                    stderr: () => stderr,
                });
            }
        });
        child.on('error', (e) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            reject(new Error(`cannot start ${name} (${path}): ${e.message}`));
        });
        child.on('exit', (code, signal) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            reject(new Error(`${name} exited early (code ${code}, signal ${signal})\n${stderr}`));
        });
    });
}

// Sends SIGTERM and waits; SIGKILL after STOP_TIMEOUT_MS. Resolves with
// {code, signal, timedOut}.
function stopServer(srv) {
    return new Promise((resolve) => {
        const c = srv.child;
        if (c.exitCode !== null || c.signalCode !== null) {
            resolve({ code: c.exitCode, signal: c.signalCode, timedOut: false });
            return;
        }
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            c.kill('SIGKILL');
        }, STOP_TIMEOUT_MS);
        c.once('exit', (code, signal) => {
            clearTimeout(timer);
            resolve({ code, signal, timedOut });
        });
        c.kill('SIGTERM');
    });
}

/**
 * Starts mock + gateway. Returns
 *   { mockBase, gwBase, client(opts), raw(path, init), stop() }
 * stop() resolves to the gateway's exit status; callers assert it is 0.
 */
export async function startStack({ workers = 2 } = {}) {
    const mockPath = findBinary('SLUICE_MOCK', 'tests/mock_provider/mock_provider');
    const gwPath = findBinary('SLUICE_GATEWAY', 'dataplane/sluice-gateway');
    const mock = await startServer('mock_provider', mockPath, ['--port', '0', '--quiet']);
    let gw;
    try {
        gw = await startServer('sluice-gateway', gwPath, [
            '--listen', '127.0.0.1:0',
            '--workers', String(workers),
            '--log-level', 'warn',
        ]);
    } catch (e) {
        await stopServer(mock);
        throw e;
    }
    const mockBase = mock.base;
    const gwBase = gw.base;

    const client = (opts = {}) =>
        new OpenAI({
            baseURL: `${gwBase}/v1`,
            apiKey: 'sk-test',
            maxRetries: 0,
            timeout: 20000,
            ...opts,
            defaultHeaders: {
                'x-sluice-provider': 'openai',
                'x-sluice-custom-host': `${mockBase}/v1`,
                ...(opts.defaultHeaders || {}),
            },
        });

    // The last request the mock received (what the gateway sent upstream).
    const lastUpstreamRequest = async () => {
        const r = await fetch(`${mockBase}/__mock/requests/last`);
        if (!r.ok) throw new Error(`mock /__mock/requests/last: ${r.status}`);
        return r.json();
    };

    let stopped = null;
    const stop = async () => {
        if (stopped) return stopped;
        stopped = (async () => {
            const g = await stopServer(gw);
            await stopServer(mock);
            return { ...g, stderr: gw.stderr() };
        })();
        return stopped;
    };

    return { mockBase, gwBase, client, lastUpstreamRequest, stop, gw, mock };
}

/** Describes a gateway exit for an assertion message. */
export function exitDescription(st) {
    const how = st.timedOut
        ? `did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM (killed)`
        : `exited with code ${st.code}, signal ${st.signal}`;
    return `sluice-gateway ${how}\n--- stderr tail ---\n${st.stderr.slice(-4000)}`;
}

/** Case-insensitive header lookup in the mock's recorded [[name, value], ...]. */
export function recordedHeader(rec, name) {
    const n = name.toLowerCase();
    const hit = rec.headers.find(([k]) => k.toLowerCase() === n);
    return hit ? hit[1] : undefined;
}

// The mock's fixed reply text (tests/mock_provider/mock_openai.c DEFAULT_TEXT).
export const MOCK_TEXT = 'This is a mock response.';
