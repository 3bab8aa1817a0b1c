// The official OpenAI SDK against every provider format Sluice translates
// (Anthropic, Gemini, Vertex AI, Bedrock, Cohere, Azure OpenAI), each served
// by the mock in that provider's own API: plain and streamed chat, tool calls
// assembled by the SDK from a stream equal to the non-streamed ones, errors
// as the SDK's typed errors, embeddings.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import OpenAI from 'openai';

import { MOCK_TEXT, exitDescription, startStack } from './harness.mjs';

let stack;

const FORMATS = {
    anthropic: { host: '/v1', model: 'claude-sonnet-4-5' },
    google: { host: '/v1beta', model: 'gemini-2.0-flash', embed: 'gemini-embedding-001' },
    'vertex-ai': {
        host: '/v1/projects/p1/locations/us-central1/publishers/google',
        model: 'gemini-2.0-flash',
    },
    bedrock: {
        host: '',
        model: 'anthropic.claude-3-haiku-20240307-v1:0',
        embed: 'amazon.titan-embed-text-v2:0',
        headers: {
            'x-sluice-aws-access-key-id': 'AKIDEXAMPLE',
            'x-sluice-aws-secret-access-key': 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
            'x-sluice-aws-region': 'us-east-1',
        },
    },
    cohere: { host: '/v2', model: 'command-r-plus', embed: 'embed-v4.0' },
    'azure-openai': {
        host: '/openai',
        model: 'gpt-4o',
        embed: 'text-embedding-3-small',
        // The OpenAI-format mock calls tools only when asked to.
        headers: { 'x-sluice-azure-deployment-id': 'dep-1', 'x-mock-tool-call': 'get_weather' },
    },
};

const tools = [{
    type: 'function',
    function: {
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
}];

function clientFor(provider, extra = {}) {
    const f = FORMATS[provider];
    return stack.client({
        defaultHeaders: {
            'x-sluice-provider': provider,
            'x-sluice-custom-host': `${stack.mockBase}${f.host}`,
            ...(f.headers || {}),
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

for (const provider of Object.keys(FORMATS)) {
    const { model, embed } = FORMATS[provider];

    test(`${provider}: chat.completions.create`, async () => {
        const c = await clientFor(provider).chat.completions.create({
            model,
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }],
        });
        assert.equal(c.object, 'chat.completion');
        assert.equal(c.choices[0].message.role, 'assistant');
        assert.equal(c.choices[0].message.content, MOCK_TEXT);
        assert.equal(c.choices[0].finish_reason, 'stop');
        assert.equal(c.usage.completion_tokens, 5);
        assert.ok(c.usage.prompt_tokens > 0);
        assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
    });

    test(`${provider}: streamed chat equals the text, usage at the end`, async () => {
        const stream = await clientFor(provider).chat.completions.create({
            model,
            stream: true,
            stream_options: { include_usage: true },
            messages: [{ role: 'user', content: 'Hello' }],
        });
        let text = '';
        let finish = null;
        let usage = null;
        for await (const chunk of stream) {
            // Azure opens with a content-filter chunk: no choices, object "".
            if (!(provider === 'azure-openai' && chunk.choices.length === 0 && !chunk.usage))
                assert.equal(chunk.object, 'chat.completion.chunk');
            if (chunk.usage) usage = chunk.usage;
            for (const ch of chunk.choices) {
                if (ch.delta?.content) text += ch.delta.content;
                if (ch.finish_reason) finish = ch.finish_reason;
            }
        }
        assert.equal(text, MOCK_TEXT);
        assert.equal(finish, 'stop');
        assert.ok(usage && usage.completion_tokens === 5, JSON.stringify(usage));
    });

    test(`${provider}: streamed tool calls assembled by the SDK equal the non-streamed ones`,
        async () => {
            const client = clientFor(provider);
            const req = {
                model,
                tools,
                tool_choice: 'required',
                messages: [{ role: 'user', content: 'Weather in Paris?' }],
            };
            const whole = await client.chat.completions.create(req);
            const streamed = await client.chat.completions.stream(req).finalChatCompletion();
            const calls = (c) => c.choices[0].message.tool_calls.map((t) => ({
                type: t.type,
                name: t.function.name,
                args: JSON.parse(t.function.arguments),
            }));
            assert.equal(whole.choices[0].finish_reason, 'tool_calls');
            assert.equal(streamed.choices[0].finish_reason, 'tool_calls');
            assert.equal(calls(whole).length, 1);
            assert.deepEqual(calls(streamed), calls(whole));
            assert.equal(calls(whole)[0].name, 'get_weather');
            assert.ok(whole.choices[0].message.tool_calls[0].id.length > 0);
        });

    test(`${provider}: a provider error is the SDK's typed error with the status`, async () => {
        const client = clientFor(provider, { 'x-mock-status': '429' });
        await assert.rejects(
            client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] }),
            (e) => {
                assert.ok(e instanceof OpenAI.RateLimitError, String(e));
                assert.equal(e.status, 429);
                assert.equal(typeof e.error.message, 'string');
                return true;
            },
        );
    });

    if (embed) {
        test(`${provider}: embeddings`, async () => {
            const r = await clientFor(provider).embeddings.create({ model: embed, input: 'Hello' });
            assert.equal(r.object, 'list');
            assert.equal(r.data.length, 1);
            assert.equal(r.data[0].index, 0);
            assert.ok(r.data[0].embedding.length > 0);
            assert.ok(r.data[0].embedding.every((x) => typeof x === 'number'));
        });
    }
}
