"""The ten example bodies of the gateway's documentation (../shared/seed-messages-api.txt)."""

PHONE = "+5511948489500"

# The ten example bodies of the gateway's "Envio de mensagens" page, exactly as written there
# (only "{phone}" replaced): nulls, the gateway's own "Id", string coordinates and all.
SEED_BODIES = {
    "text": {
        "text": {"body": "Chamando Dioniso beta via Kong"},
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "text",
        "recipient_type": "individual",
    },
    "template": {
        "template": {
            "name": "beta_abandoncart_link_v1_1",
            "language": {"policy": "deterministic", "code": "pt_BR"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "[name]"}]},
                {
                    "type": "button",
                    "sub_type": "url",
                    "index": "0",
                    "parameters": [{"type": "text", "text": "[target_url]"}],
                },
            ],
        },
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "template",
        "recipient_type": "individual",
    },
    "interactive": {
        "interactive": {
            "type": "button",
            "header": None,
            "body": {"text": "Olá, o que você gostaria de fazer? teste às 15:59"},
            "footer": None,
            "action": {
                "button": None,
                "buttons": [
                    {
                        "type": "reply",
                        "reply": {
                            "id": "OLÁ, QUERO RECEBER MEU BENEFÍCIO.",
                            "title": "Obter benefício",
                        },
                    },
                    {
                        "type": "reply",
                        "reply": {"id": "#FALARCOMALOJA", "title": "Falar com a loja"},
                    },
                ],
                "catalog_id": None,
                "product_retailer_id": None,
                "sections": None,
            },
        },
        "Id": "4edad171-75f0-4ab9-becd-642586ab9e1e",
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "interactive",
        "recipient_type": "individual",
    },
    "contacts": {
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "contacts",
        "recipient_type": "individual",
        "contacts": [
            {
                "addresses": [
                    {
                        "street": "STREET",
                        "city": "CITY",
                        "state": "STATE",
                        "zip": "ZIP",
                        "country": "COUNTRY",
                        "country_code": "COUNTRY_CODE",
                        "type": "HOME",
                    },
                    {
                        "street": "STREET",
                        "city": "CITY",
                        "state": "STATE",
                        "zip": "ZIP",
                        "country": "COUNTRY",
                        "country_code": "COUNTRY_CODE",
                        "type": "WORK",
                    },
                ],
                "birthday": "1985-02-25",
                "emails": [{"email": "EMAIL", "type": "WORK"}, {"email": "EMAIL", "type": "HOME"}],
                "name": {
                    "formatted_name": "NAME",
                    "first_name": "FIRST_NAME",
                    "last_name": "LAST_NAME",
                    "middle_name": "MIDDLE_NAME",
                    "suffix": "SUFFIX",
                    "prefix": "PREFIX",
                },
                "org": {"company": "COMPANY", "department": "DEPARTMENT", "title": "TITLE"},
                "phones": [
                    {"phone": "PHONE_NUMBER", "type": "HOME"},
                    {"phone": "PHONE_NUMBER", "type": "WORK", "wa_id": "PHONE_OR_WA_ID"},
                ],
                "urls": [{"url": "URL", "type": "WORK"}, {"url": "URL", "type": "HOME"}],
            }
        ],
    },
    "location": {
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "location",
        "recipient_type": "individual",
        "location": {
            "longitude": "0.1",
            "latitude": "0.0",
            "name": "<Location Name>",
            "address": "<Location's Address>",
        },
    },
    "image": {
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "image",
        "recipient_type": "individual",
        "image": {"id": "515056594160172"},
    },
    "audio": {
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "audio",
        "recipient_type": "individual",
        "audio": {"id": "515056594160172"},
    },
    "video": {
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "video",
        "recipient_type": "individual",
        "video": {"id": "515056594160172"},
    },
    "document": {
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "document",
        "recipient_type": "individual",
        "document": {"caption": "doc", "id": "515056594160172", "filename": "myNameDoc.pdf"},
    },
    "sticker": {
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "sticker",
        "recipient_type": "individual",
        "sticker": {"id": "515056594160172"},
    },
}
