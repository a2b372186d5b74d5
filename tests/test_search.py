"""Offline search: words, stems, synonyms, typos, servers, order, caching, and search_tools end to end."""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PYTHON, ROOT, fixture_server, write_config
from mcpzip.knowledge.catalog import Catalog, Tool
from mcpzip.knowledge.search import Index, Searcher, normalise, stem

DATA = ROOT / "benchmarks" / "data"


def tool(server: str, name: str, description: str = "", params: dict | None = None, title: str = "") -> Tool:
    definition: dict = {"name": name, "description": description, "inputSchema": {"type": "object", "properties": params or {}}}
    if title:
        definition["title"] = title
    return Tool(server, name, definition)


def names(found: tuple[list[Tool], int]) -> list[str]:
    return [t.prefixed for t in found[0]]


@pytest.fixture(scope="module")
def real() -> list[Tool]:
    """The 495 tools of 37 real MCP servers."""
    data = json.loads((DATA / "ALL.json").read_text())
    return [Tool(server, d["name"], d) for server, defs in data.items() for d in defs]


@pytest.fixture(scope="module")
def real_index(real: list[Tool]) -> Index:
    return Index(real)


# -- words ----------------------------------------------------------------------


def test_query_words_split_identifiers_of_every_style_and_fold_case():
    # normalise() gives a query's words, de-duplicated and sorted.
    assert normalise("get_file-contents") == "contents file get"
    assert normalise("API-post-search") == "api post search"
    assert normalise("HTTPServer v2.api") == "api http server v2"
    assert normalise("read_text_file2024") == "2024 file read text"
    assert normalise("ec2_instances") == "ec ec2 instances"  # short letters+digits: whole and parts
    assert normalise("Send The EMAIL") == "email send"  # stopwords go, case folds
    assert "k8s" in normalise("k8s get pods").split()  # a short mixed word stays whole
    assert normalise("listPullRequests") == "list pullrequest"  # camelCase split, then the phrase joined


def test_stemming_makes_the_forms_of_a_word_meet():
    assert len({stem(w) for w in ("create", "creates", "created", "creating", "creation")}) == 1
    assert stem("repos") == stem("repo")
    assert stem("repositories") == stem("repository")
    assert stem("messages") == stem("message")
    assert stem("running") == stem("run")
    assert stem("entities") == stem("entity")
    assert stem("sent") == stem("send")
    assert stem("status") == "status" and stem("address") == "address"  # not plurals


def test_normalised_query_is_case_folded_sorted_words():
    assert normalise("Send  an EMAIL to Bob") == normalise("send bob email")
    assert normalise("get rid of the label") == normalise("delete label")
    # A first word that is a verb in disguise keeps its meaning in the key.
    assert normalise("comment on the page") != normalise("page comment")


# -- ranking --------------------------------------------------------------------


def small_index() -> Index:
    return Index(
        [
            tool("files", "delete_file", "Delete a file from disk.", {"path": {"type": "string"}}),
            tool("files", "read_file", "Read the complete contents of a file.", {"path": {"type": "string"}}),
            tool("files", "write_file", "Create or overwrite a file with new content."),
            tool("code", "create_repository", "Create a new repository in your account."),
            tool("code", "list_issues", "List issues in a repository."),
            tool("code", "create_pull_request", "Open a pull request to merge one branch into another."),
            tool("code", "search_code", "Search for code across repositories."),
            tool("mail", "search_emails", "Search messages in the mailbox."),
            tool("mail", "delete_label", "Delete a mailbox label."),
            tool("chat", "post_message", "Post a message to a channel.", {"channel": {"type": "string"}}),
        ]
    )


@pytest.mark.parametrize(
    "query, expected",
    [
        ("remove a file", "files__delete_file"),  # remove ~ delete
        ("make a new repo", "code__create_repository"),  # make/new ~ create, repo ~ repository
        ("open a PR", "code__create_pull_request"),  # PR ~ pull request
        ("show issues", "code__list_issues"),  # show ~ list
        ("send a message", "chat__post_message"),  # send ~ post
        ("lookup code", "code__search_code"),  # lookup ~ search
        ("get rid of the label", "mail__delete_label"),  # a phrase for delete
    ],
)
def test_synonyms_find_tools_named_with_other_words(query, expected):
    assert names(small_index().search(query, 3))[0] == expected


@pytest.mark.parametrize(
    "query, expected",
    [
        ("serach emails", "mail__search_emails"),  # swapped letters
        ("delte the labal", "mail__delete_label"),  # missing and wrong letters
        ("craete repository", "code__create_repository"),
    ],
)
def test_small_typos_are_forgiven(query, expected):
    assert names(small_index().search(query, 3))[0] == expected


def test_identifier_style_queries_match(real_index: Index):
    assert names(real_index.search("listPullRequests", 1)) == ["github__list_pull_requests"]
    assert names(real_index.search("get-current-time", 2))[0] in ("time__get_current_time", "google-calendar__get-current-time")


def test_a_named_server_comes_first_without_hiding_the_others(real_index: Index):
    assert names(real_index.search("github create issue", 5))[0] == "github__create_issue"
    assert names(real_index.search("gitlab create issue", 5))[0] == "gitlab__create_issue"
    # Part of a name, or a name the vocabulary knows, names the server too.
    assert names(real_index.search("mongo list collections", 1)) == ["mongodb__list-collections"]
    assert names(real_index.search("k8s get pods", 5))[0].startswith("kubernetes__")
    # A server that does not exist hides nothing.
    found = names(real_index.search("bitbucket create issue", 5))
    assert {"github__create_issue", "gitlab__create_issue"} <= set(found)
    # Naming one server does not bury a better match elsewhere.
    assert "slack__slack_post_message" in names(real_index.search("github post a slack message", 5))


def test_a_common_word_in_a_server_name_does_not_take_over(real_index: Index):
    # "search" is part of brave-search's name, but every search tool stays in play.
    found = names(real_index.search("web search", 5))
    assert {"brave-search__brave_web_search", "tavily__tavily_search", "duckduckgo__search"} & set(found[:3])
    assert any(not n.startswith("brave-search__") for n in found[:3])


def test_order_is_deterministic_and_ties_go_by_name():
    twins = [tool(s, "echo", "Echo the text back.", {s: {"type": "string"}}) for s in ("zeta", "alpha", "mid")]
    for _ in range(3):
        random.shuffle(twins)
        assert names(Index(twins).search("echo", 3)) == ["alpha__echo", "mid__echo", "zeta__echo"]


def test_results_do_not_depend_on_catalog_order(real: list[Tool]):
    shuffled = list(real)
    random.Random(7).shuffle(shuffled)
    a, b = Index(real), Index(shuffled)
    for query in ("send email", "create a new branch", "k8s logs", "delete many documents in mongo"):
        assert names(a.search(query, 10)) == names(b.search(query, 10))


def test_limit_and_the_count_of_good_matches(real_index: Index):
    found, total = real_index.search("list", 5)
    assert len(found) == 5 and total > 5
    assert len(real_index.search("list", 50)[0]) == 50
    assert real_index.search("zzzqqq", 5) == ([], 0)
    assert real_index.search("the of and", 5) == ([], 0)  # nothing but stopwords


def test_dev_set_quality_does_not_regress(real_index: Index):
    """Guards the figures in docs/search.md (benchmarks/search_bench.py prints them)."""
    queries = [json.loads(line) for line in (DATA / "search-dev.jsonl").read_text().splitlines() if line.strip()]
    top1 = top5 = 0
    for q in queries:
        found = names(real_index.search(q["query"], 5))
        top1 += bool(found[:1]) and found[0] in q["expected"]
        top5 += bool(set(found) & set(q["expected"]))
    assert top5 / len(queries) >= 0.95
    assert top1 / len(queries) >= 0.80


def test_no_dev_query_answered_first_drops_below_third(real_index: Index):
    """Every dev query whose expected tool was first when search-dev-firsts.txt was written stays in the top three.

    The averages above absorb a single regression; this names it.
    """
    queries = {q["query"]: q["expected"] for q in map(json.loads, (DATA / "search-dev.jsonl").read_text().splitlines()) if q}
    firsts = [line for line in (DATA / "search-dev-firsts.txt").read_text().splitlines() if line]
    assert len(firsts) >= 81
    dropped = [(q, names(real_index.search(q, 3))) for q in firsts if not set(names(real_index.search(q, 3))) & set(queries[q])]
    assert not dropped


def test_the_word_exactly_as_typed_in_a_name_wins_over_its_stem(real_index: Index):
    # docs/search.md: "dashboards" is list_dashboards more than get_dashboard.
    assert names(real_index.search("datadog dashboards", 2)) == ["datadog__list_dashboards", "datadog__get_dashboard"]
    assert names(real_index.search("leave a note on the task saying I'm blocked", 1)) == ["asana__asana_create_task_story"]


def test_a_named_server_lifts_its_tool_over_a_closer_wording_elsewhere():
    tools = [tool("zendesk", f"list_{w}", f"List {w}.") for w in ("users", "groups", "macros", "views", "brands", "tags")]
    tools += [tool("zendesk", "new_ticket", "Open a ticket for a customer."),
              tool("helpdesk", "create_ticket", "Create a ticket for a customer.")]  # fmt: skip
    # helpdesk's words fit better (create, not new); the user asked for zendesk.
    assert names(Index(tools).search("zendesk create ticket", 2)) == ["zendesk__new_ticket", "helpdesk__create_ticket"]


def test_misspelled_words_count_as_the_words_meant(real_index: Index):
    # "downtime" alone matches three tools alike; the misspelled verb decides.
    assert names(real_index.search("scheudle downtime for the db hosts", 1)) == ["datadog__schedule_downtime"]
    assert names(real_index.search("cancle the maintenance window in datadog", 1)) == ["datadog__cancel_downtime"]


def test_fetch_comes_first_for_a_web_page_beside_three_copies_of_everything():
    """Nine servers, three of them copies of server-everything (whose test tools talk of resources and links)."""
    data = json.loads((DATA / "ALL.json").read_text())
    servers = {s: s for s in ("fetch", "filesystem", "git", "github", "memory", "time", "everything")}
    servers.update({"everything-copy": "everything", "demo": "everything"})
    index = Index([Tool(name, d["name"], d) for name, real in servers.items() for d in data[real]])
    for query in ("download a web page", "fetch a url", "get the contents of a url"):
        assert names(index.search(query, 1)) == ["fetch__fetch"], query


def test_shell_git_and_chat_shorthand_means_its_plain_words(real_index: Index):
    # Commands and jargon stand for what they do (vocabulary.SHORTHAND); the word as typed is matched exactly.
    assert names(real_index.search("mkdir", 1)) == ["filesystem__create_directory"]
    assert names(real_index.search("mv old.txt new.txt", 1)) == ["filesystem__move_file"]
    assert names(real_index.search("unstage", 1)) == ["git__git_reset"]
    assert names(real_index.search("unstaged changes", 1)) == ["git__git_diff_unstaged"]  # not the command
    assert names(real_index.search("gh pr create", 1)) == ["github__create_pull_request"]


def test_pruning_for_large_catalogs_changes_no_result(real: list[Tool], monkeypatch):
    """The shortcut that skips hopeless tools must give exactly the full computation's answer."""
    big = real + [Tool(f"{t.server}-{k}", t.name, t.definition) for k in (2, 3, 4) for t in real]
    index = Index(big, fold=False)
    queries = ["open the email from HR and show me the full text", "show the commit history of the repo on github",
               "list repos", "write this text to a new file", "add taks to todoist: call mom"]
    pruned = [names(index.search(q, 10)) for q in queries]
    monkeypatch.setattr(Index, "_floor", lambda self, *args: 0.0)  # never prune
    assert [names(index.search(q, 10)) for q in queries] == pruned


# -- the searcher: one index per catalog version, a cache per normalised query ----


def test_searcher_builds_once_per_catalog_version_and_drops_its_cache(tmp_path: Path):
    catalog = Catalog(["mail", "chat"])
    catalog.update("mail", [{"name": "send_email", "description": "Send an email."}], save=False)
    searcher = Searcher(catalog)
    first = searcher.search("send email", 5)
    index = searcher.index()
    assert names(first) == ["mail__send_email"]
    assert searcher.search("Send  EMAIL", 5)[0] is first[0]  # same normalised query: cached answer
    assert searcher.index() is index  # no rebuild without a change

    catalog.update("chat", [{"name": "send_message", "description": "Send an email-style message."}], save=False)
    after = searcher.search("send email", 5)
    assert searcher.index() is not index
    assert after[0] is not first[0] and "chat__send_message" in names(after)


# -- import cost ------------------------------------------------------------------


def test_importing_search_loads_nothing_heavy():
    code = "import sys; import mcpzip.knowledge.search; print(' '.join(sorted(sys.modules)))"
    # -S: without site-packages' .pth hooks (an editable install's finder imports typing on Python 3.9).
    loaded = subprocess.run([PYTHON, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for heavy in ("requests", "json", "typing", "concurrent.futures", "mcpzip.knowledge.llm", "mcpzip.knowledge.catalog"):
        assert heavy not in loaded
    # The vocabulary is parsed on first use, not at import.
    code = "import mcpzip.knowledge.search as s; print(s._vocabulary is None)"
    assert subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip() == "True"


# -- search_tools through serve ------------------------------------------------------


def cached_servers(tmp_path: Path, servers: list[str], **extra: object) -> Path:
    """A config whose servers cannot start, with their real tools in the cache file: serve answers from the cache."""
    data = json.loads((DATA / "ALL.json").read_text())
    config = write_config(tmp_path, {s: {"command": str(tmp_path / "missing-command")} for s in servers}, **extra)
    catalog = Catalog(servers, str(tmp_path / "cache" / "tools.json"))
    for s in servers:
        catalog.update(s, data[s])
    return config


def test_search_tools_end_to_end(tmp_path: Path, mcpzip):
    every = list(json.loads((DATA / "ALL.json").read_text()))
    config = cached_servers(tmp_path, every, search={"default_limit": 3})
    proc = mcpzip(config)
    proc.initialize()

    lines = proc.text("search_tools", {"query": "githb create isue"}).splitlines()
    assert lines[0].startswith("github__create_issue: ")
    assert len([l for l in lines if "__" in l.split(":")[0]]) == 3  # search.default_limit
    assert lines[-1].startswith("(") and "more matches" in lines[-1]
    # The compact line: first sentence of the description, then the parameters, * for required.
    assert "[owner:string*, repo:string*, title:string*" in lines[0]

    many = proc.text("search_tools", {"query": "list", "limit": 500}).splitlines()
    assert len([l for l in many if not l.startswith("(")]) == 50  # at most 50

    text = proc.text("search_tools", {"query": "sendSlackMessage", "limit": 1})
    assert text.startswith("slack__slack_post_message: Post a new message to a Slack channel")
    assert len(text.split(": ", 1)[1].split(" [")[0]) <= 161
    assert proc.close() == 0


def tool_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "__" in line.split(":")[0] and not line.startswith(("(", "-"))]


def test_search_restricted_to_one_server_and_browsing_it_page_by_page(tmp_path: Path, mcpzip):
    every = list(json.loads((DATA / "ALL.json").read_text()))
    proc = mcpzip(cached_servers(tmp_path, every))
    proc.initialize()

    found = tool_lines(proc.text("search_tools", {"query": "create issue", "server": "gitlab"}))
    assert found[0].startswith("gitlab__create_issue: ") and all(line.startswith("gitlab__") for line in found)

    page = proc.text("search_tools", {"server": "todoist"}).splitlines()
    assert page[0].startswith("todoist (45 tools): ")  # what the server is about, derived from its tools
    assert "task" in page[0] and "project" in page[0]
    assert len(tool_lines("\n".join(page))) == 20 and page[1].startswith("todoist__add-comments: ")
    assert page[-1].startswith("(tools 1-20 of 45; more with search_tools") and '"offset": 20' in page[-1]
    last = proc.text("search_tools", {"server": "todoist", "offset": 40}).splitlines()
    assert len(tool_lines("\n".join(last))) == 5 and last[-1].startswith("(tools 41-45 of 45;")

    wrong = proc.call("search_tools", {"server": "gitlub", "query": "issue"})
    assert wrong["isError"] and "unknown server 'gitlub'" in wrong["content"][0]["text"]
    assert "gitlab" in wrong["content"][0]["text"]  # the servers there are
    assert proc.call("search_tools", {})["isError"]  # neither query nor server


def test_a_weak_or_empty_answer_carries_what_each_server_is_about(tmp_path: Path, mcpzip):
    every = list(json.loads((DATA / "ALL.json").read_text()))
    proc = mcpzip(cached_servers(tmp_path, every))
    proc.initialize()

    weak = proc.text("search_tools", {"query": "find a plumber in Austin"})
    assert "weak" in weak
    assert "\n- google-maps (7 tools): " in weak and "\n- github (26 tools): " in weak
    assert "search_tools {\"server\": \"<name>\"}" in weak  # how to list one

    empty = proc.text("search_tools", {"query": "zzzqqq"})
    assert empty.startswith("No tools found for 'zzzqqq'.") and "\n- todoist (45 tools): " in empty

    strong = proc.text("search_tools", {"query": "send an email"})
    assert "weak" not in strong and "\n- " not in strong


def test_identical_tools_of_several_servers_take_one_line(tmp_path: Path, mcpzip):
    data = json.loads((DATA / "ALL.json").read_text())
    config = write_config(tmp_path, {s: {"command": str(tmp_path / "missing")} for s in ("fetch", "everything", "demo", "zz")})
    catalog = Catalog(["fetch", "everything", "demo", "zz"], str(tmp_path / "cache" / "tools.json"))
    for server, real in (("fetch", "fetch"), ("everything", "everything"), ("demo", "everything"), ("zz", "everything")):
        catalog.update(server, data[real])
    proc = mcpzip(config)
    proc.initialize()
    assert proc.text("search_tools", {"query": "echo"}).startswith(
        "demo__echo (also everything__echo, zz__echo): Echoes back the input string")
    # Three copies do not take three places: three different tools are shown.
    lines = tool_lines(proc.text("search_tools", {"query": "resource", "limit": 3}))
    assert len(lines) == 3 and all(line.startswith("demo__") and "(also everything__" in line for line in lines)
    # Each copy stays callable under its own name.
    assert '"name": "zz__echo"' in proc.text("describe_tool", {"name": "zz__echo"})


def test_instructions_say_what_each_server_is_about(tmp_path: Path, mcpzip):
    config = write_config(tmp_path, {
        "told": fixture_server("told", "--instructions", "Tools that misbehave on purpose. Use them in tests."),
        "plain": fixture_server("plain"),
    })  # fmt: skip
    proc = mcpzip(config)
    proc.initialize()
    assert "told__echo" in proc.text("search_tools", {"query": "echo"})  # both listed
    cache = tmp_path / "cache" / "servers.json"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the listing records what it learnt just after answering
        servers = json.loads(cache.read_text())["servers"] if cache.exists() else {}
        if all("topics" in servers.get(s, {}) and "about" in servers.get("told", {}) for s in ("told", "plain")):
            break
        time.sleep(0.05)
    assert proc.close() == 0

    again = mcpzip(config)
    text = again.initialize()["instructions"]
    told = next(line for line in text.splitlines() if line.startswith("- told ("))
    assert told.endswith(" tools): Tools that misbehave on purpose.")  # the server's own first sentence
    plain = next(line for line in text.splitlines() if line.startswith("- plain ("))
    assert ": " in plain and "echo" in plain.split(": ")[1].split(", ")  # derived from its tools' names
