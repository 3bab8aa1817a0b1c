// Anthropic's official SDK against POST /v1/messages, routed to an
// OpenAI-format provider (translated both ways) and to Anthropic (passed
// through). Streamed tool calls assembled by the SDK must equal the
// non-streamed answer.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';

import { MOCK_TEXT, exitDescription, recordedHeader, startStack } from './harness.mjs';

let stack;

const tools = [{
    name: 'get_weather',
    description: 'Weather for a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}];

function anthropicClient(provider, extra = {}) {
    return new Anthropic({
        baseURL: stack.gwBase,
        apiKey: 'sk-ant-test',
        maxRetries: 0,
        timeout: 20000,
        defaultHeaders: {
            'x-sluice-provider': provider,
            'x-sluice-custom-host': `${stack.mockBase}/v1`,
            ...extra,
        },
    });
}

before(async () => {
    stack = await startStack();
});

after(async () => {
    if (!stack) return;
    const st = await stack.stop();
    assert.equal(st.code, 0, exitDescription(st));
});

for (const provider of ['openai', 'anthropic']) {
    test(`messages.create via ${provider}`, async () => {
        const client = anthropicClient(provider);
        const m = await client.messages.create({
            model: 'claude-sonnet-4-5',
            max_tokens: 128,
            system: 'Be brief.',
            messages: [{ role: 'user', content: 'Hello' }],
        });
        assert.equal(m.type, 'message');
        assert.equal(m.role, 'assistant');
        assert.equal(m.stop_reason, 'end_turn');
        assert.equal(m.content[0].type, 'text');
        assert.ok(m.content[0].text.length > 0);
        assert.ok(m.usage.output_tokens > 0);
        const up = await stack.lastUpstreamRequest();
        if (provider === 'openai') {
            assert.equal(m.content[0].text, MOCK_TEXT);
            assert.equal(up.path, '/v1/chat/completions');
            assert.equal(recordedHeader(up, 'authorization'), 'Bearer sk-ant-test');
        } else {
            assert.equal(up.path, '/v1/messages');
            assert.equal(recordedHeader(up, 'x-api-key'), 'sk-ant-test');
            assert.equal(recordedHeader(up, 'anthropic-version'), '2023-06-01');
            assert.equal(recordedHeader(up, 'authorization'), undefined);
        }
    });

    test(`messages.stream via ${provider}: final message equals the streamed text`, async () => {
        const client = anthropicClient(provider);
        const stream = client.messages.stream({
            model: 'claude-sonnet-4-5',
            max_tokens: 128,
            messages: [{ role: 'user', content: 'Hello' }],
        });
        let text = '';
        stream.on('text', (t) => { text += t; });
        const m = await stream.finalMessage();
        assert.ok(text.length > 0);
        assert.equal(m.content[0].text, text);
        assert.equal(m.stop_reason, 'end_turn');
        assert.ok(m.usage.output_tokens > 0);
    });

    test(`streamed tool use equals the non-streamed answer via ${provider}`, async () => {
        const client = anthropicClient(provider, { 'x-mock-tool-call': 'get_weather' });
        const req = {
            model: 'claude-sonnet-4-5',
            max_tokens: 128,
            tools,
            messages: [{ role: 'user', content: 'Weather in Paris?' }],
        };
        const whole = await client.messages.create(req);
        const streamed = await client.messages.stream(req).finalMessage();
        const pick = (m) => m.content.filter((b) => b.type === 'tool_use')
            .map((b) => ({ name: b.name, input: b.input }));
        assert.equal(whole.stop_reason, 'tool_use');
        assert.equal(streamed.stop_reason, 'tool_use');
        assert.equal(pick(whole).length, 1);
        assert.deepEqual(pick(streamed), pick(whole));
        assert.equal(pick(whole)[0].name, 'get_weather');
    });

    test(`errors surface as Anthropic APIErrors via ${provider}`, async () => {
        const client = anthropicClient(provider, { 'x-mock-status': '429' });
        await assert.rejects(
            client.messages.create({
                model: 'claude-sonnet-4-5',
                max_tokens: 16,
                messages: [{ role: 'user', content: 'Hello' }],
            }),
            (e) => {
                assert.ok(e instanceof Anthropic.APIError, String(e));
                assert.equal(e.status, 429);
                assert.equal(e.error.type, 'error');
                assert.equal(e.error.error.type, 'rate_limit_error');
                return true;
            },
        );
    });
}

test('a gateway error reaches the SDK in Anthropic\'s shape', async () => {
    const client = new Anthropic({ baseURL: stack.gwBase, apiKey: 'k', maxRetries: 0 });
    await assert.rejects(
        client.messages.create({
            model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'x' }],
        }),
        (e) => {
            assert.equal(e.status, 400);
            assert.equal(e.error.error.type, 'invalid_request_error');
            assert.match(e.error.error.message, /x-sluice-provider/);
            return true;
        },
    );
});
