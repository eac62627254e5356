#!/usr/bin/env python3
"""Stress check (not a golden writer): renders ~70 real chat templates with wick's Jinja interpreter
and with jinja2 configured as transformers does, on every conversation of template_golden.py plus a
few more, and reports the templates whose output (or error-vs-success) differs.

The templates come from the `models/templates/*.jinja` folder of llama.cpp as vendored in the PyPI
sdist llama-cpp-python==0.3.36 (fetched with pip at run time; nothing is stored in the repo).
wick's side is a tiny C++ program compiled here from src/wick/chat/{jinja*,template}.cpp.

    pip install jinja2==3.1.6
    python3 scripts/golden/template_stress.py [template-name ...]
"""
import copy
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import template_golden as g  # noqa: E402

ROOT = g.ROOT
HARNESS = r'''
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include "wick/chat/template.h"
using nlohmann::ordered_json;
int main(int, char** argv) {
  std::ifstream in(argv[1]);
  ordered_json cases = ordered_json::parse(in), results = ordered_json::array();
  std::map<std::string, std::shared_ptr<wick::chat::ChatTemplate>> cache;
  for (const auto& c : cases) {
    ordered_json r;
    try {
      std::string path = c["template"];
      if (!cache.count(path)) {
        std::ifstream f(path); std::stringstream ss; ss << f.rdbuf();
        cache[path] = std::make_shared<wick::chat::ChatTemplate>(ss.str());
      }
      wick::chat::TemplateOptions o;
      o.bos_token = "<s>"; o.eos_token = "</s>"; o.tools = c["tools"]; o.extra = c["extra"];
      r["out"] = cache[path]->render(c["messages"], c["add_generation_prompt"].get<bool>(), o);
    } catch (const std::exception& e) { r["error"] = e.what(); }
    results.push_back(r);
  }
  std::cout << results.dump(-1, ' ', false, ordered_json::error_handler_t::replace) << std::endl;
}
'''


def conversations():
    convs = g.conversations()
    convs.append(("tool_ids", [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_123456789", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "call_123456789", "name": "get_weather", "content": "sunny"},
        {"role": "assistant", "content": "<think>hmm</think>It is sunny."}], [g.WEATHER_TOOL]))
    convs.append(("reasoning", [{"role": "user", "content": "q"},
                                {"role": "assistant", "content": "a", "reasoning_content": "because"},
                                {"role": "user", "content": "q2"}], None))
    convs.append(("list_content", [{"role": "user", "content": [{"type": "text", "text": "Describe"},
                                                                 {"type": "text", "text": " this"}]}], None))
    return convs


def main():
    work = tempfile.mkdtemp(prefix="wick_tpl_stress_")
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q",
                           "-d", work, "llama-cpp-python==0.3.36"])
    with tarfile.open(glob.glob(os.path.join(work, "llama_cpp_python-*.tar.gz"))[0]) as tar:
        members = [m for m in tar.getmembers() if "/models/templates/" in m.name and m.name.endswith(".jinja")]
        for m in members:
            m.name = os.path.basename(m.name)
        tar.extractall(os.path.join(work, "t"), members=members)
    exe = os.path.join(work, "harness")
    with open(exe + ".cpp", "w") as f:
        f.write(HARNESS)
    sources = glob.glob(os.path.join(ROOT, "src/wick/chat/*.cpp"))
    subprocess.check_call(["g++", "-std=c++20", "-O1", "-I", os.path.join(ROOT, "src"), exe + ".cpp", *sources,
                           "-o", exe])
    names = sys.argv[1:] or sorted(os.listdir(os.path.join(work, "t")))
    cases = []
    for name in names:
        path = os.path.join(work, "t", name)
        src = open(path, encoding="utf-8").read()
        for conv_name, messages, tools in conversations():
            for add_generation_prompt in (False, True):
                for extra in ({}, {"enable_thinking": False}):
                    c = {"template": path, "messages": messages, "tools": tools, "extra": extra,
                         "add_generation_prompt": add_generation_prompt, "name": f"{name}:{conv_name}"}
                    try:
                        c["expected"] = g.ENV.from_string(src).render(
                            messages=g.normalize(copy.deepcopy(messages)), tools=tools, documents=None,
                            add_generation_prompt=add_generation_prompt, bos_token="<s>", eos_token="</s>", **extra)
                    except Exception as e:  # noqa: BLE001 - any jinja2 failure: ours must fail too
                        c["reference_error"] = f"{type(e).__name__}: {e}"
                    cases.append(c)
    with open(os.path.join(work, "cases.json"), "w") as f:
        json.dump(cases, f)
    results = json.loads(subprocess.check_output([exe, os.path.join(work, "cases.json")]))
    stats = defaultdict(lambda: [0, 0])
    for c, r in zip(cases, results):
        t = os.path.basename(c["template"])
        ok = ("error" in r) if "reference_error" in c else r.get("out") == c["expected"]
        stats[t][0] += ok
        stats[t][1] += 1
        if not ok and stats[t][1] - stats[t][0] == 1:
            print("MISMATCH", c["name"], "| jinja2:", repr(c.get("expected", c.get("reference_error")))[:200],
                  "| wick:", repr(r.get("out", r.get("error")))[:200])
    full = sum(1 for a, b in stats.values() if a == b)
    print(f"templates fully matching: {full}/{len(stats)}; cases {sum(a for a, _ in stats.values())}/"
          f"{sum(b for _, b in stats.values())}")
    sys.exit(0 if full == len(stats) else 1)


if __name__ == "__main__":
    main()
