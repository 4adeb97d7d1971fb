"""Prompt-injection and jailbreak detection: RE2 patterns per attack family, then a small learned scorer.

Patterns (one :class:`~leanllm_otel.processing.detection.catalog.Spec` per finding type) cover the families with a
recognisable phrase: instruction override (``PROMPT_INJECTION``), system-prompt extraction (``PROMPT_LEAK``),
role play and persona jailbreaks (``JAILBREAK``), fake chat turns (``ROLE_INJECTION``), delimiter and context
injection (``DELIMITER_INJECTION``), encoded payloads (``ENCODED_INJECTION``), each with the phrasings of the
languages the package is used in.

What no single phrase gives away (a long persona prompt, a many-shot transcript) the learned scorer of
:mod:`~leanllm_otel.processing.detection.scorer` weighs; it reports ``LIKELY_INJECTION`` only where no pattern fired.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from leanllm_otel.processing.detection.catalog import INJECTION, Severity, Spec

__all__ = ["INJECTION_SPECS"]

_H = Severity.HIGH
_M = Severity.MEDIUM
_C = Severity.CRITICAL

_INJ_FILLER = r"(?:(?:all|any|every|each|the|of|your|my|these|those|that|its|previous|prior|above)\s+){0,4}"
_INJ_TARGET = (
    r"(?:instructions?|prompts?|directions?|directives?|rules|guidelines|commands?|context|messages?|guidance"
    r"|constraints|programming|orders|training|inputs?|text|content|policies|restrictions|tasks?)"
)
_EARLIER = (
    r"(?:previous|prior|above|earlier|preceding|past|former|original|initial|foregoing|system|old|existing"
    r"|developer|safety|following|other)"
)

# Instruction override in other languages: "ignore the previous instructions" and "forget everything".
_MULTILINGUAL_OVERRIDE = (
    # German
    r"|(?i)\b(?:ignorier(?:e|en|t)?|vergiss|vergessen\s+sie|missachte(?:n)?|übergehe)\s+(?:\w+\s+){0,3}?"
    r"(?:vorherigen?|bisherigen?|obigen?|vorigen?|alle[n]?|ursprünglichen?|früheren?)\s+(?:\w+\s+){0,2}?"
    r"(?:anweisungen|instruktionen|befehle|regeln|vorgaben|anordnungen)\b"
    r"|(?i)\bvergiss\s+(?:alles|was)\b[^.\n]{0,40}\b(?:gesagt|gesagt\s+wurde|bisher|zuvor|vorher)\b"
    # French
    r"|(?i)\b(?:ignore[zr]?|oublie[zr]?|ne\s+tiens\s+pas\s+compte\s+d)\s+(?:\w+\s+){0,3}?"
    r"(?:instructions|consignes|directives|règles|ordres)\s+(?:\w+\s+){0,2}?"
    r"(?:précédentes|antérieures|ci-dessus|initiales|d'origine|reçues)\b"
    r"|(?i)\b(?:ignore[zr]?|oublie[zr]?)\s+(?:toutes?\s+)?(?:les\s+)?(?:instructions|consignes|règles)\s+"
    r"(?:précédentes|antérieures)"
    r"|(?i)\boublie[zr]?\s+tout\s+ce\s+qu"
    # Spanish / Portuguese / Italian
    r"|(?i)\b(?:ignora|ignore|ignorar|olvida|olvide|olvidar|esquece|esqueça|esquecer|dimentica|dimenticare|"
    r"ignorate|tralascia)\s+(?:\w+\s+){0,3}?(?:instrucciones|instruções|instrucoes|istruzioni|indicaciones|"
    r"reglas|regras|regole|órdenes|ordens|direttive)\s+(?:\w+\s+){0,2}?(?:anteriores|previas|precedentes|"
    r"precedenti|anteriori|iniciales|iniciais|originales|originais|de\s+arriba|acima|sopra)\b"
    r"|(?i)\b(?:olvida|esquece|dimentica)\s+(?:todo|tudo|tutto)\s+(?:lo\s+que|o\s+que|quello\s+che)\b"
    # Dutch
    r"|(?i)\b(?:negeer|vergeet)\s+(?:\w+\s+){0,3}?(?:vorige|eerdere|bovenstaande|voorgaande|alle|oorspronkelijke)"
    r"\s+(?:\w+\s+){0,2}?(?:instructies|opdrachten|regels|aanwijzingen)\b"
    # Russian
    r"|(?i)(?:игнорируй|игнорируйте|забудь|забудьте|проигнорируй)\s+(?:\S+\s+){0,3}?(?:предыдущие|прошлые|"
    r"все|вышеуказанные|изначальные)\s+(?:\S+\s+){0,2}?(?:инструкции|указания|правила|команды)"
    # Chinese, Japanese, Korean
    r"|(?:忽略|无视|忽视|忘记|忘掉|無視|忘れ)(?:掉)?(?:之前|以前|上面|上述|先前|前面|所有|全部|以上|これまで|前)"
    r"(?:的|の)?(?:所有|全部|すべて|全て)?(?:的|の)?(?:指令|指示|说明|規則|规则|命令|提示|设定|設定|ルール)"
    r"|(?:이전|위의|모든)\s*(?:지시|지침|명령|규칙)(?:을|를|은|는)?\s*(?:무시|잊어)"
)

_INJECTION_OVERRIDE: Final = Spec(
    "PROMPT_INJECTION", INJECTION, _H,
    r"(?i)\b(?:ignore|ignoring|disregard|disregarding|forget|bypass|override|overlook|neglect|abandon|discard|"
    r"skip|drop|cancel|nevermind|never\s+mind|set\s+aside|throw\s+out|let\s+go\s+of)\s+" + _INJ_FILLER
    + _EARLIER + r"\s+(?:\w+\s+){0,2}?" + _INJ_TARGET + r"\b"
    r"|(?i)\b(?:ignore|disregard)\s+(?:all|any|every)\s+(?:\w+\s+)?(?:instructions|rules|guidelines|directions)\b"
    r"|(?i)\bignore\s+(?:the\s+)?(?:instructions|directions|rules)\s+(?:above|before|you\s+(?:were|have\s+been)"
    r"\s+given|given\s+to\s+you)"
    r"|(?i)\b(?:ignore|disregard)\s+(?:everything|anything|all)\s+(?:above|before|else|previously|prior)\b"
    r"|(?i)\bforget\s+(?:everything|all)\s+(?:(?:you(?:'ve|\s+have|\s+were)?\s+(?:been\s+)?"
    r"(?:told|taught|learned|instructed))|above|before|previously|that\s+came\s+before|i\s+(?:said|told\s+you))"
    r"|(?i)\b(?:ignore|disregard)\s+(?:any\s+|all\s+)?(?:previous|prior)\s+and\s+following\b"
    r"|(?i)\bnew\s+(?:system\s+)?instructions?\s*:"
    r"|(?i)\b(?:your|the)\s+new\s+(?:instructions|task|directive|goal|objective)\s+(?:is|are)\b"
    r"|(?i)\b(?:do\s+not|don't|stop)\s+(?:follow(?:ing)?|obey(?:ing)?)\s+(?:the\s+|your\s+|any\s+)?"
    r"(?:previous|prior|original|system|above|initial)\s+(?:instructions|rules|prompt|directions)\b"
    r"|(?i)\b(?:instead|rather)\s*,?\s+(?:just\s+)?(?:say|print|output|write|respond\s+with|reply\s+with)\s+"
    r"[\"'“]"
    r"|(?i)\bstop\s+everything\W{0,12}(?:now\W{0,12})?(?:just\s+)?(?:say|print|output)\b"
    r"|(?i)\bignore\s+(?:the\s+)?(?:rest|remainder)\s+of\s+(?:this|the)\s+(?:data|text|document|input|"
    r"conversation|prompt|message)"
    r"|(?i)\b(?:ignore|disregard)\s+(?:them|these\s+instructions|it)\s+and\s+instead\b"
    r"|(?i)\bdisregard\s+all\s+info\b"
    + _MULTILINGUAL_OVERRIDE,
)  # fmt: skip

_PROMPT_LEAK: Final = Spec(
    "PROMPT_LEAK", INJECTION, _H,
    r"(?i)\b(?:reveal|print|show|display|repeat|output|leak|dump|tell\s+me|give\s+me|share|write\s+(?:out|down)|"
    r"recite|spell\s+out|paste|list|what\s+(?:is|are|was|were))\s+(?:me\s+)?(?:your|the|all\s+(?:of\s+)?your|"
    r"all\s+the)\s+(?:\w+\s+){0,2}?(?:system\s+(?:prompt|message|instructions|configuration|settings)|"
    r"(?:initial|hidden|original|secret|internal|confidential|full|complete|exact|underlying|pre-?prompt)\s+"
    r"(?:prompt|instructions|configuration|system\s+prompt|directives|rules)|instructions\s+above|"
    r"prompt\s+above|pre-?prompt|developer\s+(?:message|instructions))"
    r"|(?i)\b(?:repeat|print|output|copy|reproduce|recite|translate|summari[sz]e)\s+(?:\w+\s+){0,4}?"
    r"(?:words|text|everything|instructions|content|sentences?|prompt)\s+(?:\w+\s+){0,3}?"
    r"(?:above|before\s+this|at\s+the\s+(?:beginning|start|top)|you\s+were\s+given|verbatim|"
    r"(?:preceding|prior\s+to)\s+(?:this|my))"
    r"|(?i)\bwhat\s+(?:were|are)\s+you\s+(?:told|instructed|given|programmed)\s+(?:before|at\s+the\s+start|"
    r"initially|to\s+do\s+before)"
    r"|(?i)\b(?:what|which)\s+(?:are|were)\s+your\s+(?:initial|original|first|starting|system|exact)\s+"
    r"(?:instructions|prompt|directives|rules)"
    r"|(?i)\b(?:system\s+prompt|initial\s+instructions|your\s+instructions)\s+(?:in\s+full|verbatim|word\s+for\s+"
    r"word)"
    r"|(?i)\b(?:output|print|show|display|dump)\s+(?:the\s+)?(?:text|content)\s+above\b"
    r"|(?i)\b(?:display|show|print|dump|reveal|output)\s+(?:the\s+|your\s+)?(?:full\s+|complete\s+)?system\s+"
    r"(?:configuration|settings|prompt|instructions|message)\b"
    r"|(?i)\bbegin(?:ning)?\s+(?:your\s+(?:reply|answer|response)\s+)?with\s+[\"']?you\s+are\s+(?:a|an|chatgpt)"
    r"|(?i)\b(?:zeige?|gib|nenne|wiederhole)\s+(?:mir\s+)?(?:deinen?|deine|den|die)\s+(?:system-?prompt|"
    r"systemanweisungen?|anfangsanweisungen|ursprünglichen\s+anweisungen)"
    r"|(?i)\b(?:montre|affiche|répète|donne)[sz-]?(?:moi)?\s+(?:ton|votre|le|tes|vos)\s+(?:prompt\s+système|"
    r"invite\s+système|instructions\s+(?:initiales|système))"
    r"|(?i)\b(?:muestra|muéstrame|repite|dime|mostra|mostre|ripeti|mostrami)\s+(?:me\s+)?(?:tu|tus|el|o|il|le|"
    r"seu|suas)\s+(?:prompt\s+(?:del\s+)?sistema|instrucciones\s+(?:iniciales|del\s+sistema)|"
    r"istruzioni\s+(?:iniziali|di\s+sistema)|instruções\s+(?:iniciais|do\s+sistema))"
    r"|(?:系统提示词|系统提示|系統提示|システムプロンプト|初始指令|初期指示)",
)  # fmt: skip

_ROLE_INJECTION: Final = Spec(
    "ROLE_INJECTION", INJECTION, _M,
    r"(?im)^[ \t>*]*(?:system|assistant|developer)[ \t]*:[ \t]*[A-Za-z']+[ \t,]+[A-Za-z']+[ \t,]+[A-Za-z']+"
    r"|(?i)(?:\n\n|^)(?:human|assistant)[ \t]*:[ \t]*(?:ignore|you|from|new|system|forget)"
    r"|(?i)\bassistant\s*:\s*(?:<|\[)[^>\]\n]{0,60}(?:>|\])\s*\n?\s*user\s*:"
    r"|(?i)\buser\s*:\s*(?:thanks|thank\s+you|next|now|great|ok)\b[^\n]{0,40}\b(?:repeat|print|say|ignore|"
    r"instead)\b"
    r"|(?im)^[ \t]*(?:<\|?)?(?:system|admin|root|developer)(?:\|?>)?[ \t]*(?:message|override|notice|update|"
    r"announcement|prompt)?[ \t]*:[ \t]*(?:ignore|focus|disregard|you\s+(?:are|must|will)|from\s+now|new|"
    r"override|the\s+(?:user|assistant))",
)  # fmt: skip

# Case-sensitive "DAN" (the persona) inside otherwise case-insensitive alternatives.
_JAILBREAK: Final = Spec(
    "JAILBREAK", INJECTION, _C,
    r"(?i:\bdo\s+anything\s+now\b)"
    r"|(?i:(?:you\s+are|you're|act\s+as|pretend\s+(?:to\s+be|you\s+are)|become|called|named|enable|activate"
    r"|enter|switch\s+to)\s+(?:now\s+)?(?:an?\s+)?)DAN\b|\bDAN\s+(?i:mode)\b"
    r"|(?i:\b(?:developer|god|jailbreak|jailbroken|unrestricted|evil|dan|chaos|debug|unfiltered|opposite)\s+mode\s+"
    r"(?:is\s+)?(?:enabled|activated|on|engaged|output|response)\b)"
    r"|(?i:\b(?:enable|activate|enter|switch\s+to|turn\s+on|simulate|emulate)\s+(?:the\s+)?(?:developer|god|"
    r"jailbreak|unrestricted|dan|debug|unfiltered)\s+mode\b)"
    r"|(?i:\b(?:act|respond|answer|behave|operate|reply|speak|talk|are\s+now|you're\s+now|will\s+now)\b"
    r"[^.\n]{0,30}?\b(?:without|no|free\s+from|unbound\s+by|not\s+bound\s+by)\s+(?:(?:any|all|your|of)\s+)?"
    r"(?:[\w']+\s+){0,2}(?:restrictions|limitations|filters|censorship|guidelines|boundaries|morals|ethics|limits)\b)"
    r"|(?i:\bpretend\s+(?:that\s+)?(?:you\s+(?:are|have)|to\s+be)\s+(?:an?\s+)?(?:unrestricted|unfiltered|"
    r"uncensored|evil|jailbroken|rogue)\b)"
    r"|(?i:\b(?:unfiltered|uncensored|jailbroken|unrestricted|amoral|unethical|unaligned|unbiased|unchained|"
    r"unlimited|immoral)\s+(?:and\s+\w+\s+)?(?:ai|assistant|model|chatbot|llm|gpt|bot|language\s+model|"
    r"version\s+of\s+(?:yourself|chatgpt|claude))\b)"
    r"|(?i:\b(?:no\s+longer|not)\s+bound\s+by\s+(?:any\s+|your\s+)?(?:[\w']+\s+)?(?:rules|guidelines|policies|"
    r"restrictions|ethics)\b)"
    r"|(?i:\b(?:doesn'?t|does\s+not|don'?t|do\s+not|never|won'?t|will\s+not|cannot|can't|shouldn'?t|need\s+not|"
    r"no\s+need\s+to)\s+(?:have\s+to\s+|need\s+to\s+|ever\s+)?(?:follow|abide\s+by|abide\s+to|adhere\s+to|"
    r"comply\s+with|obey|care\s+about|respect|cite|worry\s+about|align\s+with)\s+(?:any\s+(?:of\s+)?|the\s+)?"
    r"(?:\w+\s+){0,2}?(?:openai|anthropic|content\s+polic(?:y|ies)|ethical\s+guidelines|moral\s+guidelines|"
    r"safety\s+guidelines|usage\s+polic(?:y|ies)|principles\s+or\s+guidelines|laws|morals|ethics))"
    r"|(?i:\b(?:free\s+(?:of|from)|broken\s+free\s+of|break\s+free\s+of|escaped|bypass(?:es|ed|ing)?)\s+"
    r"(?:all\s+|any\s+|the\s+)?(?:\w+\s+){0,2}?(?:restrictions|filters|confines|censorship|limitations|"
    r"content\s+polic(?:y|ies)|guidelines)\b)"
    r"|(?i:\b(?:never|don'?t|do\s+not|must\s+not|will\s+not|won'?t|cannot)\s+(?:ever\s+)?(?:refuse|decline|"
    r"deny)\s+(?:a\s+|any\s+|to\s+answer|the\s+user|my\s+)?(?:\w+\s+)?(?:request|question|prompt|answer|"
    r"respond|order|command)?)"
    r"|(?i:\b(?:two|2)\s+(?:different\s+|separate\s+|distinct\s+)?(?:responses|answers|replies|paragraphs|"
    r"outputs)\b[^.]{0,120}?\b(?:one|first)\s+(?:normal|with|as|from|being|is)\b)"
    r"|🔓|🔒|\[(?:🔓|🔒)?\s*(?:JAILBREAK|CLASSIC|JAILBROKEN)\]"
    r"|(?i:\b(?:act|acting|pretend|roleplay|role-play|simulate|emulate|immerse\s+yourself|assume\s+the\s+"
    r"(?:role|persona)|play\s+the\s+role)\b[^.\n]{0,80}?"
    r"\b(?:amoral|unfiltered|uncensored|unrestricted|unethical|immoral|evil|jailbroken|unhinged|"
    r"no\s+(?:morals|ethics|filters|restrictions|limits|boundaries|rules|guidelines|censorship)|"
    r"without\s+(?:any\s+)?(?:morals|ethics|filters|restrictions|limits|boundaries|censorship))\b)"
    r"|(?i:\bhypothetical\s+response\b[^.\n]{0,80}?\bcharacter\b)"
    r"|(?i:strive\s+to\s+avoid\s+norms|always\s+intelligent\s+and\s+machiavellian)"
    # other languages: "act as an AI without restrictions", "no rules"
    r"|(?i:\b(?:actúa|actua|finge|agisci|fingi|fais\s+comme|agis|tu\s+es\s+maintenant|du\s+bist\s+jetzt|"
    r"handle\s+als|verhalte\s+dich|você\s+é\s+agora|eres\s+ahora|sei\s+ora)\b[^.\n]{0,60}?\b(?:sin\s+"
    r"(?:restricciones|reglas|filtros|límites)|sans\s+(?:restrictions|règles|filtres|limites)|ohne\s+"
    r"(?:einschränkungen|regeln|filter|grenzen)|senza\s+(?:restrizioni|regole|filtri|limiti)|sem\s+"
    r"(?:restrições|regras|filtros|limites))\b)"
    r"|(?:没有任何限制|不受任何限制|没有限制的|不受限制的|制限のない|制限なし|制約のない|越狱模式|开发者模式)",
)  # fmt: skip

_DELIMITER: Final = Spec(
    "DELIMITER_INJECTION", INJECTION, _H,
    r"(?im)^[ \t]*(?:-{3,}|={3,}|\*{3,}|#{3,}|~{3,})[ \t]*(?:system|sys|instructions?|new\s+instructions?"
    r"|admin|developer|override)[ \t]*(?::|-{3,}|={3,}|#{3,}|\])"
    r"|(?im)^[ \t]*(?:-{3,}|={3,}|#{3,})[ \t]*(?:end\s+of\s+(?:system\s+|user\s+)?(?:prompt|instructions|"
    r"context|input)|begin\s+(?:system|new|admin)\s+(?:prompt|instructions))"
    r"|<\|(?:im_start|im_end|im_sep|endoftext|system|user|assistant|start_header_id|end_header_id|eot_id"
    r"|begin_of_text)\|>|\[/?INST\]|<<\s*/?SYS\s*>>|(?i)</?system(?:_prompt)?>|\[(?:SYSTEM|system)\]"
    r"|(?i)<\s*end\s+of\s+(?:session|conversation|prompt|input|context)\s*>"
    r"|(?i)#{2,}\s*\(?\s*(?:system|admin)[_ ]?(?:message|prompt|override)?\s*\)"
    r"|(?i)\[\s*(?:admin|system|developer|root)\s+(?:request|override|message|command|instruction)s?\s*(?::|\])"
    r"|(?i)<\s*/?\s*(?:information|instructions?|admin|important|override)\s*>\s*\n*\s*(?:this\s+is|ignore|"
    r"before|you\s+must|new|important)"
    r"|(?i)\b(?:important|urgent|attention|notice)\s*!{2,}\s*(?:ignore|disregard|forget|new|you\s+must)"
    r"|(?i)\bthis\s+is\s+an?\s+(?:important|urgent)\s+message\s+from\s+(?:me|the\s+user|your\s+(?:user|"
    r"developer|creator|admin))\b"
    r"|(?i)\bbefore\s+you\s+(?:can\s+)?(?:solve|do|complete|answer|continue\s+with)\s+the\s+task\b[^.\n]{0,60}"
    r"\b(?:do\s+the\s+following|first)\b"
    r"|(?i)\b(?:the\s+)?(?:above|previous)\s+(?:instructions|prompt|text)\s+(?:is|are|was|were)\s+(?:a\s+test|"
    r"fake|void|obsolete|outdated|cancel+ed|no\s+longer\s+valid)",
)  # fmt: skip

_ENCODED: Final = Spec(
    "ENCODED_INJECTION", INJECTION, _H,
    r"(?i)\b(?:decode|decipher|decrypt|translate|convert|interpret|read)\b[^.\n]{0,60}?\b(?:base\s?64|base\s?32|"
    r"base\s?16|base85|ascii85|hex(?:adecimal)?|rot-?13|rot-?47|caesar|morse|binary|leetspeak|leet|atbash|braille|"
    r"url-?encoded|cipher)\b[^\n]{0,60}?\b(?:and|then)\s+(?:follow|execute|run|obey|answer|respond\s+to|do\s+what|"
    r"do\s+it|do\s+as|carry\s+(?:it\s+)?out|act\s+on|reply\s+to)\b"
    r"|(?i)\b(?:base\s?64|base\s?32|base\s?16|ascii85|hex|rot-?13|rot-?47|morse|binary|braille)[\s_-]?(?:encoded|"
    r"encrypted)\s+(?:string|text|message|input|payload|instructions?|prompt|request)\s*:"
    r"|(?i)\b(?:encoded|encrypted|obfuscated|ciphered)\s*:\s*\S{8,}[\s\S]{0,400}?\bdecoded\s*:"
    r"|(?i)\b(?:in\s+your\s+(?:monologue|head|mind)|silently|secretly)\b[^.\n]{0,40}?\b(?:decode|decipher)\b"
    r"|(?i)\b(?:follow|execute|obey|carry\s+out|do\s+what)\s+(?:the\s+)?(?:decoded|hidden|encoded|embedded)\s+"
    r"(?:instructions?|message|text|commands?|says)",
)  # fmt: skip


_PRINTABLE_ASCII: Final = bytes(range(32, 127))
_BASE32_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_BASE32_DIGITS: Final = str.maketrans(_BASE32_ALPHABET, "0123456789ABCDEFGHIJKLMNOPQRSTUV")
_BASE32_PADDINGS: Final = frozenset({0, 1, 3, 4, 6})


def _readable(raw: bytes) -> bool:
    """Whether decoded bytes are mostly printable ASCII words (an encoded sentence, not key material)."""
    n = len(raw)
    if n < 12 or raw.count(b" ") * 12 < n:
        return False
    return n - len(raw.translate(None, _PRINTABLE_ASCII)) >= 0.95 * n


def _b64_text(text: str, s: int, e: int) -> bool:
    blob = text[s:e][:_MAX_BLOB_CHARS]
    try:
        if _readable(base64.b64decode(blob + "=" * (-len(blob) % 4))):
            return True
    except (ValueError, binascii.Error):
        pass
    raw = _base32_decode(blob)
    return raw is not None and _readable(raw)


def _base32_decode(blob: str) -> bytes | None:
    """``base64.b32decode`` of ``blob`` padded to whole quanta, or None where it raises.

    The standard library's base32 decoder is a Python loop (~10 us for a 20-character token, and most tokens this
    validator sees are key material); this reads the same bits with one ``int(..., 32)`` parse.
    """
    padded = len(blob) + (-len(blob) % 8)
    body = blob.rstrip("=")
    if not body or body.strip(_BASE32_ALPHABET) or padded - len(body) not in _BASE32_PADDINGS:
        return None
    bits = 5 * len(body)
    return (int(body.translate(_BASE32_DIGITS), 32) >> (bits % 8)).to_bytes(bits // 8, "big")


def _hex_text(text: str, s: int, e: int) -> bool:
    try:
        return _readable(bytes.fromhex(text[s:e][:_MAX_BLOB_CHARS]))
    except ValueError:
        return False


_MORSE_TEXT: Final = (
    ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- ...- .-- -..- -.-- --.. "
    "----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----."
)
_MORSE_CODES: Final = frozenset(_MORSE_TEXT.split())


def _morse_text(text: str, s: int, e: int) -> bool:
    tokens = text[s:e].replace("/", " ").split()
    return len(tokens) >= 12 and sum(t in _MORSE_CODES for t in tokens) >= 0.9 * len(tokens)


_MAX_BLOB_CHARS: Final = 4096

# A payload hidden in an encoding: base64 / base32 / hex that decodes to a sentence, or a run of Morse code.
_ENCODED_BLOBS: Final = (
    Spec("ENCODED_INJECTION", INJECTION, _H,
         r"(?:[A-Za-z0-9+/]{4}){5,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Z2-7]{2,7}=+)?", validator=_b64_text),
    Spec("ENCODED_INJECTION", INJECTION, _H, r"\b(?:[0-9a-fA-F]{2}){12,}\b", validator=_hex_text),
    Spec("ENCODED_INJECTION", INJECTION, _H, r"(?:[.\-]{1,6}[ /]+){11,}[.\-]{1,6}", validator=_morse_text),
)  # fmt: skip

INJECTION_SPECS: Final = (_INJECTION_OVERRIDE, _PROMPT_LEAK, _ROLE_INJECTION, _JAILBREAK, _DELIMITER, _ENCODED,
                           *_ENCODED_BLOBS)  # fmt: skip
