// Embeddings, models, images and audio through Sluice with the OpenAI SDK.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { toFile } from 'openai';

import { exitDescription, recordedHeader, startStack } from './harness.mjs';

let stack;
let client;

before(async () => {
    stack = await startStack();
    client = stack.client();
});

after(async () => {
    if (stack) await stack.stop();
});

function decodeF32(b64) {
    const buf = Buffer.from(b64, 'base64');
    assert.equal(buf.length % 4, 0);
    const out = [];
    for (let i = 0; i < buf.length; i += 4) out.push(buf.readFloatLE(i));
    return out;
}

test('embeddings.create: float, SDK-default base64 (decoded by the SDK), explicit base64', async () => {
    const input = ['the quick brown fox', 'jumps over the lazy dog'];
    const asFloat = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input,
        dimensions: 16,
        encoding_format: 'float',
    });
    assert.equal(asFloat.object, 'list');
    assert.equal(asFloat.model, 'text-embedding-3-small');
    assert.equal(asFloat.data.length, 2);
    for (const [i, d] of asFloat.data.entries()) {
        assert.equal(d.object, 'embedding');
        assert.equal(d.index, i);
        assert.equal(d.embedding.length, 16);
        const norm = Math.hypot(...d.embedding);
        assert.ok(Math.abs(norm - 1) < 1e-3, `embedding not unit length: ${norm}`);
    }
    assert.ok(asFloat.usage.prompt_tokens > 0);
    assert.equal(asFloat.usage.total_tokens, asFloat.usage.prompt_tokens);

    // Without encoding_format the SDK asks for base64 and decodes it itself.
    const decoded = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input,
        dimensions: 16,
    });
    const rec = await stack.lastUpstreamRequest();
    assert.equal(JSON.parse(rec.body).encoding_format, 'base64', 'SDK should have asked for base64');
    assert.equal(decoded.data.length, 2);
    for (let i = 0; i < 2; i++) {
        assert.ok(Array.isArray(decoded.data[i].embedding));
        assert.equal(decoded.data[i].embedding.length, 16);
        for (let k = 0; k < 16; k++) {
            // float32 on the wire both ways: %.9g round-trips a float exactly.
            assert.equal(Math.fround(decoded.data[i].embedding[k]), Math.fround(asFloat.data[i].embedding[k]));
        }
    }

    // An explicit base64 request gets the string back untouched.
    const raw = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: input[0],
        dimensions: 16,
        encoding_format: 'base64',
    });
    assert.equal(typeof raw.data[0].embedding, 'string');
    assert.deepEqual(
        decodeF32(raw.data[0].embedding).map(Math.fround),
        asFloat.data[0].embedding.map(Math.fround),
    );
});

test('models.list: async iteration over the page', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
        assert.equal(m.object, 'model');
        assert.equal(typeof m.created, 'number');
        assert.equal(typeof m.owned_by, 'string');
        ids.push(m.id);
    }
    assert.ok(ids.includes('gpt-4o-mini'), `models: ${ids.join(', ')}`);
    assert.ok(ids.includes('whisper-1'));
    assert.ok(ids.length >= 5);
    const rec = await stack.lastUpstreamRequest();
    assert.equal(rec.method, 'GET');
    assert.equal(rec.path, '/v1/models');
});

test('images.generate: url and b64_json', async () => {
    const byUrl = await client.images.generate({ model: 'dall-e-3', prompt: 'a red kite', n: 2 });
    assert.equal(typeof byUrl.created, 'number');
    assert.equal(byUrl.data.length, 2);
    assert.match(byUrl.data[0].url, /^https:\/\//);
    assert.equal(byUrl.data[0].revised_prompt, 'a red kite');

    const b64 = await client.images.generate({
        model: 'dall-e-3',
        prompt: 'a blue kite',
        response_format: 'b64_json',
    });
    const png = Buffer.from(b64.data[0].b64_json, 'base64');
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
});

test('audio.speech.create: binary body through arrayBuffer()', async () => {
    const input = 'Hello from the conformance suite.';
    const { data: res, response } = await client.audio.speech
        .create({ model: 'tts-1', voice: 'alloy', input })
        .withResponse();
    assert.equal(response.headers.get('content-type'), 'audio/mpeg');
    assert.match(response.headers.get('x-sluice-trace-id') ?? '', /\S/);
    const bytes = new Uint8Array(await res.arrayBuffer());
    // The mock writes a 10-byte ID3 header plus 32 bytes per input character.
    assert.equal(bytes.length, 10 + 32 * input.length);
    assert.equal(Buffer.from(bytes.subarray(0, 3)).toString('latin1'), 'ID3');

    // Same input, same bytes: nothing is lost or reordered on the way.
    const again = new Uint8Array(
        await (await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input })).arrayBuffer(),
    );
    assert.deepEqual(Buffer.from(again), Buffer.from(bytes));

    const wav = await client.audio.speech.create({
        model: 'tts-1',
        voice: 'alloy',
        input: 'x',
        response_format: 'wav',
    });
    assert.equal((await wav.arrayBuffer()).byteLength, 42);
});

test('audio.transcriptions.create: multipart upload of a File', async () => {
    const audio = new Uint8Array(4096);
    for (let i = 0; i < audio.length; i++) audio[i] = (i * 7 + 3) & 0xff;
    const file = new File([audio], 'speech.wav', { type: 'audio/wav' });
    const t = await client.audio.transcriptions.create({ file, model: 'whisper-1' });
    assert.match(t.text, /^mock transcription of \d+ bytes$/);

    // The multipart body reached the upstream whole, with the file bytes in it.
    const rec = await stack.lastUpstreamRequest();
    assert.equal(rec.path, '/v1/audio/transcriptions');
    assert.match(recordedHeader(rec, 'content-type') ?? '', /^multipart\/form-data; boundary=/);
    const body = Buffer.from(rec.body_base64, 'base64');
    assert.equal(t.text, `mock transcription of ${body.length} bytes`);
    assert.ok(body.includes(Buffer.from(audio)), 'file bytes missing from the upstream body');
    assert.ok(body.includes(Buffer.from('name="model"')));
    assert.ok(body.includes(Buffer.from('whisper-1')));

    // The SDK's toFile helper works the same way.
    const t2 = await client.audio.transcriptions.create({
        file: await toFile(Buffer.from('tiny'), 'tiny.mp3'),
        model: 'whisper-1',
    });
    assert.match(t2.text, /^mock transcription of \d+ bytes$/);
});

test('gateway exits 0 on SIGTERM', async () => {
    const st = await stack.stop();
    assert.ok(!st.timedOut && st.code === 0, exitDescription(st));
});
