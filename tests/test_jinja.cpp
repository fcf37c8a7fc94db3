// Unit tests of the Jinja interpreter (tokenizer/chat/) through ChatTemplate. Expected
// strings are what Jinja2 3.1 renders with Hugging Face's settings (trim_blocks,
// lstrip_blocks, loop controls, tojson without HTML escaping): each was checked against
// Python's jinja2 when written.
#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/chat/chat_template.h"
#include "tokenizer/chat/jinja_eval.h"
#include "tokenizer/chat/jinja_parser.h"

namespace ember {
namespace {

const std::vector<ChatMessage> kMessages = {
    {"system", "Sys"}, {"user", " Hi there \n"}, {"assistant", "Hello, é!"}, {"user", "more"}};

// Renders src with kMessages, add_generation_prompt true, bos "<s>", eos "</s>".
Status Try(std::string_view src, std::string* out) {
  std::unique_ptr<ChatTemplate> t;
  EMBER_RETURN_IF_ERROR(ChatTemplate::Parse(src, &t));
  return t->Render(kMessages, true, {"<s>", "</s>", "", ""}, out);
}

std::string R(std::string_view src) {
  std::string out;
  Status st = Try(src, &out);
  EXPECT_TRUE(st.ok()) << src << ": " << st.ToString();
  return out;
}

Status Err(std::string_view src) {
  std::string out;
  Status st = Try(src, &out);
  EXPECT_FALSE(st.ok()) << src << " rendered " << out;
  return st;
}

// ---- whitespace control ----

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  EXPECT_EQ(R("  {% if true %}\n    line\n  {% endif %}\ntext"), "    line\ntext");
  EXPECT_EQ(R("{% for m in messages %}\n  {{ m.role }}\n{% endfor %}"), "  system\n  user\n  assistant\n  user\n");
  EXPECT_EQ(R("x  {% if true %}\ny {%- if true -%}   z   {%- endif %}{% endif %}"), "x  yz");
  EXPECT_EQ(R("start\n    {# c #}   \nend"), "start\n   \nend");  // lstrip before {#, trim after #}
  EXPECT_EQ(R("{{ 'x' }}\n{{ 'y' }}\n  {{ 'z' }}"), "x\ny\n  z");  // not around {{ }}
}

TEST(JinjaWhitespace, DashAndPlusModifiers) {
  EXPECT_EQ(R("{{- 'a' -}}   \n   {{- 'b' }}   {{ 'c' -}}\n\nd"), "ab   cd");
  EXPECT_EQ(R("a\n{%- if true %}\nb\n{% endif -%}\n  c"), "ab\nc");
  EXPECT_EQ(R("a {%+ if true %}b{% endif %}"), "a b");
  EXPECT_EQ(R("{%+ if true %}  keep{% endif +%}\nnext"), "  keep\nnext");
  EXPECT_EQ(R("line1\n{% set x = 1 %}\nline2 {{ x }}\n   {% set y = 2 %}   tail"), "line1\nline2 1\n   tail");
}

TEST(JinjaWhitespace, NewlinesNormalisedAndOneTrailingNewlineDropped) {
  EXPECT_EQ(R("x\r\n{% if true %}\r\ny\r\n{% endif %}\r\n"), "x\ny\n");
  EXPECT_EQ(R("a\n\n"), "a\n");
  EXPECT_EQ(R("{# only a comment #}"), "");
}

// ---- statements ----

TEST(JinjaStatements, LoopVariables) {
  EXPECT_EQ(R("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
              "{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}"),
            "1043TrueFalse4|2132FalseFalse4|3221FalseFalse4|4310FalseTrue4|");
  EXPECT_EQ(R("{% for a in [[1, 2], [3, 4]] %}{% for b in a %}{{ loop.index }}{{ b }}{% endfor %}{{ loop.index }};"
              "{% endfor %}"),
            "11221;13242;");
  EXPECT_EQ(R("{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"), "-2,1-3,2-,");
}

TEST(JinjaStatements, BreakContinueElseAndInlineFilter) {
  EXPECT_EQ(R("{% for m in messages %}{% if loop.index == 2 %}{% continue %}{% endif %}{% if loop.index == 4 %}"
              "{% break %}{% endif %}{{ m.role }},{% endfor %}"),
            "system,assistant,");
  EXPECT_EQ(R("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }}:{{ m.content|trim }};"
              "{% endfor %}"),
            "1/2:Hi there;2/2:more;");
  EXPECT_EQ(R("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}"), "a=1;b=2;");
}

TEST(JinjaStatements, ScopesAndNamespaces) {
  EXPECT_EQ(R("{% set x = 1 %}{% for m in messages %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(R("{% for i in [1, 2] %}[{{ x }}]{% set x = i %}{% endfor %}"), "[][]");  // per iteration
  EXPECT_EQ(R("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
  EXPECT_EQ(R("{% set ns = namespace(n=0, s='') %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
              "{% set ns.s = ns.s ~ m.role[0] %}{% endfor %}{{ ns.n }} {{ ns.s }}"),
            "4 suau");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(R("{% set block %}inner {{ 1 }}{% endset %}[{{ block }}]"), "[inner 1]");
  EXPECT_EQ(R("{% filter upper %}hello {{ 'world' }}{% endfilter %}"), "HELLO WORLD");
  EXPECT_EQ(R("{% generation %}kept{% endgeneration %}"), "kept");
}

TEST(JinjaStatements, Macros) {
  EXPECT_EQ(R("{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}"
              "{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }}"),
            "Hello A! Hello B? Hello C.");
  EXPECT_EQ(R("{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(5) }}"), "54321");
  // A macro sees the template's top level, not its caller's loop variables.
  EXPECT_EQ(R("{% set top = 'T' %}{% macro m() %}{{ top }}{{ i }}{% endmacro %}{% for i in [1] %}{{ m() }}"
              "{% endfor %}"),
            "T");
}

// ---- expressions ----

TEST(JinjaExpressions, ArithmeticAndNumbers) {
  EXPECT_EQ(R("{{ 1 + 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1.5 * 2 }}"
              " {{ 0.1 + 0.2 }}"),
            "3 3 -4 1 2 3.5 1024 3.0 0.30000000000000004");
  EXPECT_EQ(R("{{ 1e3 }} {{ 1.0 }} {{ 100000000000000000.0 }} {{ 0.0001 }} {{ 0.00001 }} {{ 1/3 }} {{ 2.5e-10 }}"),
            "1000.0 1.0 1e+17 0.0001 1e-05 0.3333333333333333 2.5e-10");
  EXPECT_EQ(R("{{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }} {{ [1, 2] + [3] }} {{ [1, 'a', none, true, 1.0] }}"),
            "a1NoneTrue ababab [1, 2, 3] [1, 'a', None, True, 1.0]");
  EXPECT_EQ(R("{{ {'a': 1, 'b': [1, 2]} }} {{ true }} {{ none }} {{ false|string }}"),
            "{'a': 1, 'b': [1, 2]} True None False");
}

TEST(JinjaExpressions, PrecedenceLogicAndComparisons) {
  // Filters bind tighter than + and ~.
  EXPECT_EQ(R("{{ messages|length - 1 }} {{ 'a' + messages[0].content|upper + 'b' }}"), "3 aSYSb");
  EXPECT_EQ(R("{{ 'yes' if 1 > 0 else 'no' }} {{ 'yes' if 0 else 'no' }} {{ 'x' if false }}|"), "yes no |");
  EXPECT_EQ(R("{{ not true }} {{ not 0 and 1 }} {{ 0 or 'x' }} {{ 1 and 'y' }} {{ none or [] }} {{ -(2) }}"),
            "False 1 x y [] -2");
  EXPECT_EQ(R("{{ 'a' in 'cat' }} {{ 'z' not in 'cat' }} {{ 2 in [1, 2] }} {{ 'a' in {'a': 1} }} {{ 1 == 1.0 }}"),
            "True True True True True");
}

TEST(JinjaExpressions, SubscriptsSlicesAndAttributes) {
  EXPECT_EQ(R("{{ messages[0]['content'] }} {{ messages[-1].content }} [{{ messages[10] }}] "
              "{{ messages[1:3]|length }} {{ (messages|last).role }} {{ messages.0.role }}"),
            "Sys more [] 2 user system");
  EXPECT_EQ(R("{{ 'hello'[::-1] }} {{ 'hello'[1:] }} {{ 'hello'[:-1] }} {{ 'hello'[::2] }} {{ [1, 2, 3, 4][::-1] }} "
              "{{ [1, 2, 3, 4][-2:] }} {{ 'é中'[1] }} {{ 'é中'|length }}"),
            "olleh ello hell hlo [4, 3, 2, 1] [3, 4] 中 2");
}

TEST(JinjaExpressions, UndefinedAndTests) {
  EXPECT_EQ(R("[{{ nothing }}] {{ nothing is defined }} {{ nothing is not defined }} {{ nothing|length }} "
              "{% for x in nothing %}no{% endfor %}{{ nothing.attr.deeper }}{{ nothing['k'] }}"),
            "[] False True 0 ");
  EXPECT_EQ(R("{{ none is none }} {{ 'a' is string }} {{ 1 is number }} {{ {} is mapping }} {{ [] is iterable }} "
              "{{ 3 is odd }} {{ 4 is even }} {{ 6 is divisibleby 3 }} {{ 'abc' is lower }} {{ 1 is eq 1 }}"),
            "True True True True True True True True True True");
  EXPECT_EQ(R("{{ tools is none }} {{ bos_token }} {{ unk_token is defined }}"), "True <s> False");
}

// ---- filters and methods ----

TEST(JinjaFilters, StringsAndConversions) {
  EXPECT_EQ(R("{{ '  a b  '|trim }}|{{ 'hello world-foo(bar'|title }} {{ 'hELLO'|capitalize }} {{ 'abc'|upper }} "
              "{{ 'ABC'|lower }} {{ 'aaa'|replace('a', 'b', 2) }}"),
            "a b|Hello World-Foo(Bar Hello ABC abc bba");
  EXPECT_EQ(R("{{ nothing|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }}"),
            "d  d None");
  EXPECT_EQ(R("{{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ 'abc'|list }} {{ 42|string ~ 'x' }} {{ '42'|int + 1 }} "
              "{{ '3.5'|float }} {{ 'x'|int }} {{ 3.9|int }}"),
            "3 2 ['a', 'b', 'c'] 42x 43 3.5 0 3");
  EXPECT_EQ(R("{{ [1, 2, 3]|sum }} {{ [3, 1, 2]|max }} {{ [3, 1, 2]|min }} {{ [1, 2]|reverse|list }} "
              "{{ 'abc'|reverse }} {{ 'a\\nb\\n\\nc'|indent(2) }}"),
            "6 3 1 [2, 1] cba a\n  b\n\n  c");
}

TEST(JinjaFilters, ToJson) {
  EXPECT_EQ(R("{{ {'a': 1}|tojson }} {{ [1, 'x', {'k': none}]|tojson }} {{ 'é\"\\n\\t<'|tojson }}"),
            "{\"a\": 1} [1, \"x\", {\"k\": null}] \"é\\\"\\n\\t<\"");
  EXPECT_EQ(R("{{ {'a': [1, 2], 'b': {'c': 'd'}, 'e': []}|tojson(indent=2) }}"),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {\n    \"c\": \"d\"\n  },\n  \"e\": []\n}");
  EXPECT_EQ(R("{{ messages[0]|tojson }}"), "{\"role\": \"system\", \"content\": \"Sys\"}");
}

TEST(JinjaFilters, SequencesOfObjects) {
  EXPECT_EQ(R("{{ [1, 2, 3]|join(',') }} {{ messages|map(attribute='role')|join(' ') }} "
              "{{ messages|selectattr('role', 'equalto', 'user')|list|length }} "
              "{{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='role')|list }}"),
            "1,2,3 system user assistant user 2 ['system', 'assistant']");
  EXPECT_EQ(R("{{ messages|selectattr('role', 'in', ['user', 'system'])|map(attribute='content')|map('trim')"
              "|join('|') }}"),
            "Sys|Hi there|more");
  EXPECT_EQ(R("{{ {'a': 1, 'b': 2}|items|list|length }}"), "2");
}

TEST(JinjaFilters, StringAndDictMethods) {
  EXPECT_EQ(R("{{ 'xxaxx'.strip('x') }} {{ '  a '.lstrip() }}| {{ ' a  '.rstrip() }}| {{ 'a,b,,c'.split(',') }} "
              "{{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}"),
            "a a |  a| ['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']");
  EXPECT_EQ(R("{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith('lo') }} {{ 'Hello'.startswith(('x', 'H')) }} "
              "{{ 'hello world'.title() }} {{ 'hello'.upper() }} {{ 'HeLLo'.lower() }} {{ 'abc'.replace('b', 'X') }} "
              "{{ 'abcabc'.find('c') }} {{ 'abc'.find('z') }}"),
            "True True True Hello World HELLO hello aXc 2 -1");
  EXPECT_EQ(R("{{ {'a': 1}.get('a') }} {{ {'a': 1}.get('z') }} {{ {'a': 1}.get('z', 5) }} "
              "{{ {'a': 1, 'b': 2}.keys()|list }} {{ {'a': 1}.values()|list }}"),
            "1 None 5 ['a', 'b'] [1]");
  // Unicode whitespace is whitespace to trim and strip, as in Python.
  EXPECT_EQ(R("{{ '\\u3000x\\u00a0'|trim }}"), "x");
}

TEST(JinjaGlobals, RangeRaiseAndClock) {
  EXPECT_EQ(R("{% for i in range(3) %}{{ i }}{% endfor %} {{ range(2, 10, 3)|list }} {{ range(5, 0, -2)|list }}"),
            "012 [2, 5, 8] [5, 3, 1]");
  Status st = Err("{{ raise_exception('boom') }}");
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(st.message(), "chat template: boom");
  char year[8];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(year, sizeof year, "%Y", &tm);
  EXPECT_EQ(R("{{ strftime_now('%Y') }}"), year);
}

// ---- errors ----

TEST(JinjaErrors, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    const char* src;
    const char* message;
  };
  const Case cases[] = {
      {"ok\n{{ 1 ", "chat template: line 2, column 1: unterminated tag '{{' (no '}}')"},
      {"{% if x", "chat template: line 1, column 1: unterminated tag '{%' (no '%}')"},
      {"a\nb\n  {# never", "chat template: line 3, column 3: unterminated comment '{#' (no '#}')"},
      {"{{ 'abc }}", "chat template: line 1, column 4: unterminated string literal"},
      {"{% if true %}x", "chat template: line 1, column 15: unexpected end of template: missing '{% endif %}'"},
      {"{% endfor %}", "chat template: line 1, column 4: unexpected '{% endfor %}' (no open block it ends)"},
      {"{% break %}", "chat template: line 1, column 4: 'break' outside a for loop"},
      {"{{ 1 if }}", "chat template: line 1, column 9: unexpected '}}' in an expression"},
      {"{{ a ! b }}", "chat template: line 1, column 6: unexpected character '!' in a tag"},
  };
  for (const Case& c : cases) {
    Status st = Err(c.src);
    EXPECT_EQ(st.code(), Code::kBadFormat) << c.src;
    EXPECT_EQ(st.message(), c.message) << c.src;
  }
}

TEST(JinjaErrors, UnsupportedConstructsAreNamed) {
  struct Case {
    const char* src;
    const char* message;
  };
  const Case cases[] = {
      {"\n{% include 'x' %}", "chat template: line 2: the '{% include %}' statement is not supported"},
      {"{% call m() %}{% endcall %}", "chat template: line 1: the '{% call %}' statement is not supported"},
      {"{{ x|wordwrap }}", "chat template: line 1: the filter 'wordwrap' is not supported"},
      {"{{ x is sameas_not }}", "chat template: line 1: the test 'sameas_not' is not supported"},
      {"{{ 'x'.format(1) }}", "chat template: line 1: the string method 'format' is not supported"},
      {"{{ 'a %s' % 1 }}", "chat template: line 1: printf-style string formatting ('%') is not supported"},
      {"{% for x in y recursive %}{% endfor %}", "chat template: line 1: recursive for loops are not supported"},
  };
  for (const Case& c : cases) {
    Status st = Err(c.src);
    EXPECT_EQ(st.code(), Code::kUnsupported) << c.src;
    EXPECT_EQ(st.message(), c.message) << c.src;
  }
}

TEST(JinjaErrors, RuntimeErrorsNameTheLine) {
  EXPECT_EQ(Err("\n\n{{ x + 1 }}").message(), "chat template: line 3: 'x' is undefined");
  EXPECT_EQ(Err("{{ 'a' + 1 }}").message(), "chat template: line 1: unsupported operand types for +: string and integer");
  EXPECT_EQ(Err("{{ 5 // 0 }}").message(), "chat template: line 1: division by zero");
  EXPECT_EQ(Err("{{ nope() }}").message(), "chat template: line 1: 'nope' is undefined");
  EXPECT_EQ(Err("{% set x.y = 1 %}").message(),
            "chat template: line 1: cannot set 'y' on 'x' (undefined): only a namespace() takes attribute assignment");
  EXPECT_EQ(Err("{% for x in 5 %}{% endfor %}").message(),
            "chat template: line 1: cannot iterate over a value of type integer");
}

// ---- hostile templates: bounded, never a crash ----

TEST(JinjaHostile, DeepNestingIsRejected) {
  const std::string parens = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  EXPECT_EQ(Err(parens).code(), Code::kBadFormat);
  std::string ifs;
  for (int i = 0; i < 3000; ++i) ifs += "{% if true %}";
  EXPECT_EQ(Err(ifs).code(), Code::kBadFormat);
  std::string chain = "{{ 1";
  for (int i = 0; i < 20000; ++i) chain += " + 1";
  EXPECT_NE(Err(chain + " }}").message().find("expression nested deeper than"), std::string::npos);
  std::string filters = "{{ x";
  for (int i = 0; i < 20000; ++i) filters += "|trim";
  EXPECT_EQ(Err(filters + " }}").code(), Code::kBadFormat);
  // Within the caps, nesting works.
  EXPECT_EQ(R("{{ " + std::string(20, '(') + "1" + std::string(20, ')') + " }}"), "1");
}

TEST(JinjaHostile, LoopsOutputAndRecursionAreCapped) {
  Status st = Err("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
  EXPECT_EQ(st.code(), Code::kOutOfRange);
  EXPECT_EQ(st.message(), "chat template: line 1: more than 1000000 loop iterations");
  EXPECT_EQ(Err("{{ range(1000000000)|length }}").message(), "chat template: line 1: a list exceeds 100000 items");
  EXPECT_EQ(Err("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").message(),
            "chat template: line 1: macro calls nested deeper than 64");
  EXPECT_EQ(Err("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")
                .message(),
            "chat template: line 1: a string or the output exceeds 16777216 bytes");
  EXPECT_EQ(Err("{{ 'x' * 100000000000 }}").code(), Code::kOutOfRange);
  EXPECT_EQ(Err("{{ [1] * 100000000000 }}").code(), Code::kOutOfRange);
  EXPECT_EQ(Err("{{ 2 ** 1000 }}").message(), "chat template: line 1: integer overflow in '**'");
  // Output built from many small pieces stops at the same cap.
  EXPECT_EQ(Err("{% for i in range(100000) %}{% for j in range(10) %}" + std::string(200, 'x') +
                "{% endfor %}{% endfor %}")
                .code(),
            Code::kOutOfRange);
}

// Copies share storage, and every way to grow a value is checked before the value is
// built, so a small template cannot make a huge one; the work of a render is capped too.
TEST(JinjaHostile, HugeValuesAndWorkAreCapped) {
  const std::string big = "{% set s = 'x' * 16000000 %}{% set l = [s] * 100000 %}";
  EXPECT_EQ(R(big + "{{ l|length }}"), "100000");
  EXPECT_EQ(Err(big + "{{ l }}").code(), Code::kOutOfRange);
  EXPECT_EQ(Err(big + "{{ l|tojson }}").message(), "chat template: line 1: tojson: the text exceeds 16777216 bytes");
  EXPECT_EQ(Err(big + "{{ l|join|length }}").code(), Code::kOutOfRange);
  EXPECT_EQ(Err("{{ ('x' * 16000000)|replace('x', 'yy') }}").code(), Code::kOutOfRange);
  EXPECT_EQ(Err("{% set s = 'x' * 16000000 %}{% for i in range(100000) %}{% set t = s|upper %}{% endfor %}").message(),
            "chat template: line 1: more than 268435456 bytes of strings made");
  EXPECT_EQ(R("{{ 1 ** 9000000000000000000 }} {{ (-2) ** 63 }} {{ 'x'|indent(100000000000) }}"),
            "1 -9223372036854775808 x");
}

TEST(JinjaHostile, ArbitraryBytesNeverCrash) {
  // Every prefix of a real template is either rendered or rejected with a status.
  const std::string src =
      "{%- set ns = namespace(a=1) -%}{% for m in messages[::-1] if m.role != 'x' %}{{ loop.index ~ m.content|trim "
      "}}{% if ns.a is defined and not (m.role in ['user']) %}{% set ns.a = ns.a + 1 %}{% endif %}{% endfor %}"
      "{# c #}{{ {'k': [1, 2.5, none]}|tojson(indent=1) }}";
  for (size_t n = 0; n <= src.size(); ++n) {
    std::string out;
    Status st = Try(src.substr(0, n), &out);
    EXPECT_TRUE(st.ok() || st.code() == Code::kBadFormat) << n << ": " << st.ToString();
  }
  std::string out;
  EXPECT_TRUE(Try(std::string("\0{{ '\0' }}\xff\xfe", 12), &out).ok());
  EXPECT_EQ(out, std::string("\0\0\xff\xfe", 4));
}

}  // namespace
}  // namespace ember
