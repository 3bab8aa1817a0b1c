#include <stdio.h>
#include <string.h>

#include "common/provider.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/proxy/stage.h"

const gw_adapter_t *gw_adapter_for(sl_api_format_t format)
{
    switch (format) {
    case SL_FORMAT_OPENAI:
    case SL_FORMAT_AZURE:
        return &gw_adapter_openai;
    case SL_FORMAT_ANTHROPIC:
        return &gw_adapter_anthropic;
    case SL_FORMAT_GEMINI:
        return &gw_adapter_gemini;
    case SL_FORMAT_BEDROCK:
        return &gw_adapter_bedrock;
    case SL_FORMAT_COHERE:
        return &gw_adapter_cohere;
    case SL_FORMAT_COUNT:
        break;
    }
    return &gw_adapter_openai;
}

static unsigned endpoint_cap(gw_endpoint_t ep)
{
    switch (ep) {
    case GW_EP_CHAT: return SL_CAP_CHAT;
    case GW_EP_MESSAGES: return SL_CAP_CHAT;
    case GW_EP_COMPLETIONS: return SL_CAP_COMPLETIONS;
    case GW_EP_EMBEDDINGS: return SL_CAP_EMBEDDINGS;
    case GW_EP_IMAGES: return SL_CAP_IMAGES;
    case GW_EP_SPEECH:
    case GW_EP_TRANSCRIPTIONS:
    case GW_EP_TRANSLATIONS: return SL_CAP_AUDIO;
    case GW_EP_MODELS: return SL_CAP_MODELS;
    case GW_EP_OTHER: return SL_CAP_PASSTHROUGH;
    }
    return 0;
}

int gw_provider_build(gw_proxy_t *px)
{
    const sl_provider_t *p = px->provider;
    if ((p->endpoints & endpoint_cap(px->endpoint)) == 0) {
        px->error_message = sl_arena_printf(&px->req->arena, "provider %s does not support %s",
                                            p->name, px->endpoint_name);
        return SL_EUNSUPPORTED;
    }
    px->adapter = gw_adapter_for(p->format);
    return px->adapter->build_request(px);
}
