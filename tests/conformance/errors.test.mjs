// Errors as the OpenAI SDK sees them: upstream errors relayed, the gateway's
// own errors in OpenAI's shape, and broken streams that must not end quietly.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import OpenAI from 'openai';

import { exitDescription, startStack } from './harness.mjs';

let stack;
let client;

const body = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };

before(async () => {
    stack = await startStack();
    client = stack.client();
});

after(async () => {
    if (stack) await stack.stop();
});

test('upstream 429 -> RateLimitError with the provider message and headers', async () => {
    await assert.rejects(
        client.chat.completions.create(body, {
            headers: { 'x-mock-status': '429', 'x-mock-retry-after': '7' },
        }),
        (e) => {
            assert.ok(e instanceof OpenAI.RateLimitError, `got ${e?.constructor?.name}: ${e?.message}`);
            assert.equal(e.status, 429);
            assert.match(e.message, /^429 Rate limit reached for requests \(mock\)/);
            assert.equal(e.code, 'rate_limit_exceeded');
            assert.equal(e.type, 'rate_limit_exceeded');
            assert.equal(e.headers.get('retry-after'), '7');
            assert.match(e.headers.get('x-sluice-trace-id') ?? '', /\S/);
            assert.match(e.requestID ?? '', /^req_mock_\d+$/);
            return true;
        },
    );
});

test('upstream 500 -> InternalServerError; 401 -> AuthenticationError', async () => {
    await assert.rejects(
        client.chat.completions.create(body, { headers: { 'x-mock-status': '500' } }),
        (e) => e instanceof OpenAI.InternalServerError && e.status === 500 && e.type === 'server_error',
    );
    await assert.rejects(
        client.embeddings.create(
            { model: 'text-embedding-3-small', input: 'x' },
            { headers: { 'x-mock-status': '401' } },
        ),
        (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key',
    );
});

test('unknown provider (header override) -> BadRequestError code unknown_provider', async () => {
    await assert.rejects(
        client.chat.completions.create(body, { headers: { 'x-sluice-provider': 'no-such-provider' } }),
        (e) => {
            assert.ok(e instanceof OpenAI.BadRequestError, `got ${e?.constructor?.name}: ${e?.message}`);
            assert.equal(e.status, 400);
            assert.equal(e.code, 'unknown_provider');
            assert.equal(e.type, 'invalid_request_error');
            assert.equal(e.param, 'x-sluice-provider');
            assert.match(e.message, /no-such-provider/);
            assert.match(e.headers.get('x-sluice-trace-id') ?? '', /\S/);
            assert.match(e.headers.get('x-sluice-overhead-us') ?? '', /^\d+$/);
            return true;
        },
    );
});

test('gateway errors: bad custom host, unreachable upstream, upstream timeout', async () => {
    await assert.rejects(
        client.chat.completions.create(body, { headers: { 'x-sluice-custom-host': 'ftp://127.0.0.1/v1' } }),
        (e) => e instanceof OpenAI.BadRequestError && e.code === 'invalid_custom_host',
    );
    // Port 1 on loopback: nothing listens there.
    await assert.rejects(
        client.chat.completions.create(body, { headers: { 'x-sluice-custom-host': 'http://127.0.0.1:1/v1' } }),
        (e) => e instanceof OpenAI.InternalServerError && e.status === 502 && e.code === 'upstream_unreachable',
    );
    await assert.rejects(
        client.chat.completions.create(body, {
            headers: { 'x-mock-delay-ms': '3000', 'x-sluice-request-timeout': '200' },
        }),
        (e) => e instanceof OpenAI.InternalServerError && e.status === 504 && e.code === 'upstream_timeout',
    );
});

test('upstream error for an unknown path -> NotFoundError', async () => {
    await assert.rejects(
        client.get('/no/such/endpoint'),
        (e) => e instanceof OpenAI.NotFoundError && e.status === 404,
    );
});

async function drain(stream) {
    let text = '';
    let chunks = 0;
    try {
        for await (const chunk of stream) {
            chunks++;
            text += chunk.choices[0]?.delta?.content ?? '';
        }
    } catch (e) {
        return { text, chunks, error: e };
    }
    return { text, chunks, error: null };
}

test('stream broken mid-way (x-mock-drop-after: 2) -> iterating throws APIError', async () => {
    // The mock resets the connection after the second event, so each of these
    // requests reaches it on a new upstream connection.
    for (let i = 0; i < 3; i++) {
        const stream = await client.chat.completions.create(
            { ...body, stream: true },
            { headers: { 'x-mock-drop-after': '2' } },
        );
        const r = await drain(stream);
        assert.ok(r.error, `the stream ended quietly after ${r.chunks} chunks ("${r.text}")`);
        assert.ok(r.error instanceof OpenAI.APIError, `got ${r.error?.constructor?.name}: ${r.error?.message}`);
        assert.equal(r.chunks, 2, 'the two events sent before the drop are delivered');
        assert.equal(r.text, 'This');
        assert.match(r.error.message, /incomplete/);
        assert.equal(r.error.type, 'api_error');
        assert.match(r.error.code ?? '', /^upstream_/);
    }
});

test('malformed upstream event (x-mock-malformed: 1) -> iterating throws APIError', async () => {
    const stream = await client.chat.completions.create(
        { ...body, stream: true },
        { headers: { 'x-mock-malformed': '1' } },
    );
    const r = await drain(stream);
    assert.ok(r.error, `the stream ended quietly after ${r.chunks} chunks`);
    assert.ok(r.error instanceof OpenAI.APIError, `got ${r.error?.constructor?.name}: ${r.error?.message}`);
    assert.equal(r.chunks, 1);
});

test('the gateway still serves after the failures above', async () => {
    const c = await client.chat.completions.create(body);
    assert.equal(c.choices[0].finish_reason, 'stop');
});

test('gateway exits 0 on SIGTERM', async () => {
    const st = await stack.stop();
    assert.ok(!st.timedOut && st.code === 0, exitDescription(st));
});
