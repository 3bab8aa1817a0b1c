// Chat and text completions through Sluice with the official OpenAI SDK.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import OpenAI from 'openai';

import { MOCK_TEXT, exitDescription, recordedHeader, startStack } from './harness.mjs';

let stack;
let client;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const messages = [{ role: 'user', content: 'Say something, please.' }];

before(async () => {
    stack = await startStack();
    client = stack.client();
});

after(async () => {
    if (stack) await stack.stop();
});

test('chat.completions.create (non-streaming): fields, usage, id', async () => {
    const c = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    assert.match(c.id, /^chatcmpl-/);
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.model, 'gpt-4o-mini');
    assert.equal(typeof c.created, 'number');
    assert.equal(c.choices.length, 1);
    const ch = c.choices[0];
    assert.equal(ch.index, 0);
    assert.equal(ch.finish_reason, 'stop');
    assert.equal(ch.message.role, 'assistant');
    assert.equal(ch.message.content, MOCK_TEXT);
    assert.ok(c.usage.prompt_tokens > 0);
    assert.equal(c.usage.completion_tokens, MOCK_TEXT.split(' ').length);
    assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);

    // What went upstream: the caller's key, the body as sent, no gateway headers.
    const rec = await stack.lastUpstreamRequest();
    assert.equal(rec.method, 'POST');
    assert.equal(rec.path, '/v1/chat/completions');
    assert.equal(recordedHeader(rec, 'authorization'), 'Bearer sk-test');
    assert.deepEqual(JSON.parse(rec.body).messages, messages);
    for (const [name] of rec.headers) {
        assert.ok(!/^x-(sluice|portkey)-/i.test(name), `gateway header ${name} leaked upstream`);
    }
});

test('chat.completions.create with stream: for await, content, finish_reason, usage chunk', async () => {
    const stream = await client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages,
        stream: true,
        stream_options: { include_usage: true },
    });
    let text = '';
    let finish = null;
    let usage = null;
    let n = 0;
    const ids = new Set();
    for await (const chunk of stream) {
        n++;
        ids.add(chunk.id);
        assert.equal(chunk.object, 'chat.completion.chunk');
        for (const ch of chunk.choices) {
            if (ch.delta?.content) text += ch.delta.content;
            if (ch.finish_reason) finish = ch.finish_reason;
        }
        if (chunk.usage) {
            assert.equal(chunk.choices.length, 0, 'the usage chunk has no choices');
            usage = chunk.usage;
        }
    }
    assert.equal(text, MOCK_TEXT);
    assert.equal(finish, 'stop');
    assert.ok(n >= 3, `only ${n} chunks`);
    assert.equal(ids.size, 1, 'every chunk carries the same id');
    assert.ok(usage, 'no usage chunk although stream_options.include_usage was set');
    assert.equal(usage.completion_tokens, MOCK_TEXT.split(' ').length);
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
});

test('streaming: many chunks and multi-byte UTF-8 content arrive intact', async () => {
    const content = 'Grüße, 世界! Ünïcödé 🎉 emoji and a "quoted" \\ backslash';
    const stream = await client.chat.completions.create(
        { model: 'gpt-4o-mini', messages, stream: true },
        // Header values travel as bytes: send the UTF-8 bytes as a latin1 string.
        { headers: { 'x-mock-content': Buffer.from(content, 'utf8').toString('latin1') } },
    );
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, content);

    const many = await client.chat.completions.create(
        { model: 'gpt-4o-mini', messages, stream: true },
        { headers: { 'x-mock-chunks': '300' } },
    );
    let pieces = 0;
    let finish = null;
    for await (const chunk of many) {
        if (chunk.choices[0]?.delta?.content) pieces++;
        if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
    }
    assert.equal(pieces, 300);
    assert.equal(finish, 'stop');
});

test('chat.completions.stream helper: finalChatCompletion', async () => {
    const runner = client.chat.completions.stream({ model: 'gpt-4o-mini', messages });
    const deltas = [];
    runner.on('content', (d) => deltas.push(d));
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.content, MOCK_TEXT);
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(deltas.join(''), MOCK_TEXT);
});

test('.withResponse() exposes x-sluice-trace-id and x-sluice-overhead-us', async () => {
    const { data, response, request_id } = await client.chat.completions
        .create({ model: 'gpt-4o-mini', messages })
        .withResponse();
    assert.equal(data.choices[0].message.content, MOCK_TEXT);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('x-sluice-trace-id') ?? '', UUID_RE);
    const overhead = response.headers.get('x-sluice-overhead-us');
    assert.match(overhead ?? '', /^\d+$/);
    assert.ok(Number(overhead) < 5_000_000, `overhead ${overhead} us`);
    assert.equal(response.headers.get('x-sluice-provider'), 'openai');
    // The upstream's own headers are relayed.
    assert.match(request_id ?? '', /^req_mock_\d+$/);

    // Streams carry the same headers, and a caller's trace id is kept.
    const s = await client.chat.completions
        .create(
            { model: 'gpt-4o-mini', messages, stream: true },
            { headers: { 'x-sluice-trace-id': 'conformance-trace-1' } },
        )
        .withResponse();
    assert.equal(s.response.headers.get('x-sluice-trace-id'), 'conformance-trace-1');
    assert.match(s.response.headers.get('x-sluice-overhead-us') ?? '', /^\d+$/);
    assert.match(s.response.headers.get('content-type') ?? '', /^text\/event-stream/);
    let text = '';
    for await (const chunk of s.data) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, MOCK_TEXT);
});

test('completions.create (legacy), non-streaming and streaming', async () => {
    const c = await client.completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt: 'Once upon a time',
        max_tokens: 16,
    });
    assert.match(c.id, /^cmpl-/);
    assert.equal(c.object, 'text_completion');
    assert.equal(c.model, 'gpt-3.5-turbo-instruct');
    assert.equal(c.choices[0].text, MOCK_TEXT);
    assert.equal(c.choices[0].finish_reason, 'stop');
    assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);

    const s = await client.completions.create({
        model: 'gpt-3.5-turbo-instruct',
        prompt: 'Once upon a time',
        stream: true,
    });
    let text = '';
    for await (const chunk of s) text += chunk.choices[0]?.text ?? '';
    assert.equal(text, MOCK_TEXT);
});

test('Portkey-style x-portkey-* headers are accepted as aliases', async () => {
    const pk = new OpenAI({
        baseURL: `${stack.gwBase}/v1`,
        apiKey: 'sk-portkey-user',
        maxRetries: 0,
        defaultHeaders: {
            'x-portkey-provider': 'openai',
            'x-portkey-custom-host': `${stack.mockBase}/v1`,
            'x-portkey-trace-id': 'portkey-trace-7',
        },
    });
    const { data, response } = await pk.chat.completions
        .create({ model: 'gpt-4o', messages })
        .withResponse();
    assert.equal(data.choices[0].message.content, MOCK_TEXT);
    assert.equal(data.model, 'gpt-4o');
    assert.equal(response.headers.get('x-sluice-provider'), 'openai');
    assert.equal(response.headers.get('x-sluice-trace-id'), 'portkey-trace-7');
    const rec = await stack.lastUpstreamRequest();
    assert.equal(recordedHeader(rec, 'authorization'), 'Bearer sk-portkey-user');
    for (const [name] of rec.headers) {
        assert.ok(!/^x-(sluice|portkey)-/i.test(name), `gateway header ${name} leaked upstream`);
    }

    // The x-sluice-* header wins over its x-portkey-* alias.
    await assert.rejects(
        pk.chat.completions.create(
            { model: 'gpt-4o', messages },
            { headers: { 'x-sluice-provider': 'no-such-provider' } },
        ),
        (e) => e instanceof OpenAI.BadRequestError && e.code === 'unknown_provider',
    );
});

test('gateway exits 0 on SIGTERM', async () => {
    const st = await stack.stop();
    assert.ok(!st.timedOut && st.code === 0, exitDescription(st));
});
