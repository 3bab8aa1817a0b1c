-- Sluice: seed prices for model_pricing.
--
-- These are the providers' published list prices as of 2026-11-25 (the date
-- they were compiled), in US dollars per 1M tokens: pay-as-you-go / standard
-- tier, no batch, flex, priority or volume discounts, no regional uplift.
-- For a model a provider has retired or stopped listing, the price is the last
-- one it published. They are a starting point, not a contract: every row is
-- editable through the admin API (/v1/admin/pricing), and prices change, so
-- check them against the provider's page before billing on them.
--
-- cached_input_per_mtok is the provider's price for cached input tokens
-- (OpenAI "cached input", Anthropic "cache hits & refreshes" i.e. cache read,
-- Gemini "context caching", DeepSeek "cache hit", xAI "cached input"). It is
-- NULL where the provider publishes no cached price, or where this seed could
-- not confirm one (the Bedrock and Vertex AI rows). Cache writes, long-context
-- surcharges, per-request and tool fees are not modelled here.
--
-- Tiered prices: Gemini rows use the lowest tier (prompts <= 200k tokens for
-- 2.5 Pro, <= 128k tokens for the 1.5 models); GPT-5.4/5.5 and Claude Sonnet
-- 4/4.5 use the standard-context rate. Embedding models bill input only, so
-- their output price is 0.
--
-- Sources (read 2026-11-25):
--   OpenAI      https://developers.openai.com/api/docs/pricing and the model
--               pages https://developers.openai.com/api/docs/models/<model>
--   Anthropic   https://platform.claude.com/docs/en/about-claude/pricing,
--               https://docs.anthropic.com/en/docs/about-claude/pricing
--   Google      https://ai.google.dev/gemini-api/docs/pricing,
--               https://cloud.google.com/vertex-ai/generative-ai/pricing
--   Mistral     https://mistral.ai/pricing, https://docs.mistral.ai/getting-started/models/
--   Cohere      https://cohere.com/pricing
--   DeepSeek    https://api-docs.deepseek.com/quick_start/pricing
--   xAI         https://docs.x.ai/docs/models
--   Groq        https://groq.com/pricing
--   Bedrock     https://aws.amazon.com/bedrock/pricing/ (US East, N. Virginia, on-demand)
--   Azure       https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/
--               (global standard deployment; same list price as OpenAI)

INSERT INTO model_pricing (provider, model, input_per_mtok, output_per_mtok, cached_input_per_mtok) VALUES
    -- OpenAI
    ('openai', 'gpt-5.5',                 5.00,   30.00,  0.50),
    ('openai', 'gpt-5.4',                 2.50,   15.00,  0.25),
    ('openai', 'gpt-5.4-mini',            0.75,    4.50,  0.075),
    ('openai', 'gpt-5.4-nano',            0.20,    1.25,  0.02),
    ('openai', 'gpt-5',                   1.25,   10.00,  0.125),
    ('openai', 'gpt-5-mini',              0.25,    2.00,  0.025),
    ('openai', 'gpt-5-nano',              0.05,    0.40,  0.005),
    ('openai', 'gpt-4.1',                 2.00,    8.00,  0.50),
    ('openai', 'gpt-4.1-mini',            0.40,    1.60,  0.10),
    ('openai', 'gpt-4.1-nano',            0.10,    0.40,  0.025),
    ('openai', 'gpt-4o',                  2.50,   10.00,  1.25),
    ('openai', 'gpt-4o-mini',             0.15,    0.60,  0.075),
    ('openai', 'o1',                     15.00,   60.00,  7.50),
    ('openai', 'o3',                      2.00,    8.00,  0.50),
    ('openai', 'o3-mini',                 1.10,    4.40,  0.55),
    ('openai', 'o4-mini',                 1.10,    4.40,  0.275),
    ('openai', 'gpt-3.5-turbo',           0.50,    1.50,  NULL),
    ('openai', 'text-embedding-3-small',  0.02,    0,     NULL),
    ('openai', 'text-embedding-3-large',  0.13,    0,     NULL),

    -- Azure OpenAI (global standard deployments, same list price as OpenAI)
    ('azure-openai', 'gpt-4o',            2.50,   10.00,  1.25),
    ('azure-openai', 'gpt-4o-mini',       0.15,    0.60,  0.075),
    ('azure-openai', 'gpt-4.1',           2.00,    8.00,  0.50),
    ('azure-openai', 'gpt-4.1-mini',      0.40,    1.60,  0.10),

    -- Anthropic (API model ids; cached = cache read / "cache hits & refreshes")
    ('anthropic', 'claude-opus-4-7',              5.00,  25.00,  0.50),
    ('anthropic', 'claude-opus-4-6',              5.00,  25.00,  0.50),
    ('anthropic', 'claude-opus-4-5-20251101',     5.00,  25.00,  0.50),
    ('anthropic', 'claude-opus-4-1-20250805',    15.00,  75.00,  1.50),
    ('anthropic', 'claude-opus-4-20250514',      15.00,  75.00,  1.50),
    ('anthropic', 'claude-sonnet-4-6',            3.00,  15.00,  0.30),
    ('anthropic', 'claude-sonnet-4-5-20250929',   3.00,  15.00,  0.30),
    ('anthropic', 'claude-sonnet-4-20250514',     3.00,  15.00,  0.30),
    ('anthropic', 'claude-3-7-sonnet-20250219',   3.00,  15.00,  0.30),
    ('anthropic', 'claude-3-5-sonnet-20241022',   3.00,  15.00,  0.30),
    ('anthropic', 'claude-3-5-sonnet-20240620',   3.00,  15.00,  0.30),
    ('anthropic', 'claude-haiku-4-5-20251001',    1.00,   5.00,  0.10),
    ('anthropic', 'claude-3-5-haiku-20241022',    0.80,   4.00,  0.08),
    ('anthropic', 'claude-3-opus-20240229',      15.00,  75.00,  1.50),
    ('anthropic', 'claude-3-haiku-20240307',      0.25,   1.25,  0.03),

    -- Google Gemini API (cached = context caching price)
    ('google', 'gemini-2.5-pro',          1.25,   10.00,  0.125),  -- prompts <= 200k tokens
    ('google', 'gemini-2.5-flash',        0.30,    2.50,  0.03),   -- text/image/video input
    ('google', 'gemini-2.5-flash-lite',   0.10,    0.40,  0.01),
    ('google', 'gemini-2.0-flash',        0.10,    0.40,  0.025),
    ('google', 'gemini-2.0-flash-lite',   0.075,   0.30,  NULL),
    ('google', 'gemini-1.5-pro',          1.25,    5.00,  0.3125), -- prompts <= 128k tokens
    ('google', 'gemini-1.5-flash',        0.075,   0.30,  0.01875),-- prompts <= 128k tokens

    -- Google Vertex AI
    ('vertex-ai', 'gemini-2.5-pro',       1.25,   10.00,  NULL),   -- prompts <= 200k tokens
    ('vertex-ai', 'gemini-2.5-flash',     0.30,    2.50,  NULL),

    -- Mistral AI (pinned versions where the -latest alias has moved between prices)
    ('mistral-ai', 'mistral-large-2512',      0.50,   1.50,  NULL),  -- Mistral Large 3
    ('mistral-ai', 'mistral-large-2411',      2.00,   6.00,  NULL),  -- Mistral Large 2.1
    ('mistral-ai', 'mistral-medium-2508',     0.40,   2.00,  NULL),  -- Mistral Medium 3.1
    ('mistral-ai', 'mistral-medium-2505',     0.40,   2.00,  NULL),  -- Mistral Medium 3
    ('mistral-ai', 'mistral-small-latest',    0.10,   0.30,  NULL),
    ('mistral-ai', 'codestral-latest',        0.30,   0.90,  NULL),
    ('mistral-ai', 'magistral-medium-latest', 2.00,   5.00,  NULL),
    ('mistral-ai', 'open-mistral-nemo',       0.15,   0.15,  NULL),
    ('mistral-ai', 'mistral-embed',           0.10,   0,     NULL),

    -- Cohere
    ('cohere', 'command-a-03-2025',       2.50,   10.00,  NULL),
    ('cohere', 'command-r-plus-08-2024',  2.50,   10.00,  NULL),
    ('cohere', 'command-r-plus-04-2024',  3.00,   15.00,  NULL),
    ('cohere', 'command-r-08-2024',       0.15,    0.60,  NULL),
    ('cohere', 'command-r-03-2024',       0.50,    1.50,  NULL),
    ('cohere', 'command-r7b-12-2024',     0.0375,  0.15,  NULL),

    -- DeepSeek (cached = cache-hit input price). deepseek-chat and
    -- deepseek-reasoner are the aliases DeepSeek bills as DeepSeek-V4-Flash
    -- (non-thinking / thinking); DeepSeek retired the aliases after 2026-07-24.
    ('deepseek', 'deepseek-v4-flash',     0.14,    0.28,  0.0028),
    ('deepseek', 'deepseek-chat',         0.14,    0.28,  0.0028),
    ('deepseek', 'deepseek-reasoner',     0.14,    0.28,  0.0028),

    -- xAI
    ('x-ai', 'grok-4-0709',                 3.00,  15.00,  0.75),
    ('x-ai', 'grok-4-fast-reasoning',       0.20,   0.50,  0.05),
    ('x-ai', 'grok-4-fast-non-reasoning',   0.20,   0.50,  0.05),
    ('x-ai', 'grok-code-fast-1',            0.20,   1.50,  0.02),
    ('x-ai', 'grok-3',                      3.00,  15.00,  0.75),
    ('x-ai', 'grok-3-mini',                 0.30,   0.50,  0.075),

    -- Groq
    ('groq', 'llama-3.1-8b-instant',      0.05,    0.08,  NULL),
    ('groq', 'llama-3.3-70b-versatile',   0.59,    0.79,  NULL),

    -- Amazon Bedrock (model ids; on-demand, US East N. Virginia)
    ('bedrock', 'anthropic.claude-opus-4-20250514-v1:0',       15.00,  75.00,  NULL),
    ('bedrock', 'anthropic.claude-sonnet-4-20250514-v1:0',      3.00,  15.00,  NULL),
    ('bedrock', 'anthropic.claude-3-7-sonnet-20250219-v1:0',    3.00,  15.00,  NULL),
    ('bedrock', 'anthropic.claude-3-5-sonnet-20241022-v2:0',    3.00,  15.00,  NULL),
    ('bedrock', 'anthropic.claude-3-5-sonnet-20240620-v1:0',    3.00,  15.00,  NULL),
    ('bedrock', 'anthropic.claude-3-5-haiku-20241022-v1:0',     0.80,   4.00,  NULL),
    ('bedrock', 'anthropic.claude-3-haiku-20240307-v1:0',       0.25,   1.25,  NULL),
    ('bedrock', 'meta.llama3-3-70b-instruct-v1:0',              0.72,   0.72,  NULL),
    ('bedrock', 'meta.llama3-1-70b-instruct-v1:0',              0.72,   0.72,  NULL),
    ('bedrock', 'meta.llama3-1-8b-instruct-v1:0',               0.22,   0.22,  NULL),
    ('bedrock', 'amazon.nova-pro-v1:0',                         0.80,   3.20,  NULL),
    ('bedrock', 'amazon.nova-lite-v1:0',                        0.06,   0.24,  NULL),
    ('bedrock', 'amazon.nova-micro-v1:0',                       0.035,  0.14,  NULL),
    ('bedrock', 'amazon.titan-embed-text-v2:0',                 0.02,   0,     NULL);
