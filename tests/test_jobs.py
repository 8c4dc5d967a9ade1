"""`map(..., batch=True)` through OpenAI's Batch API, as a durable job, against the loopback
batch server (tests/support/batch_servers.py: the documented Files and Batches endpoints, a fast
clock, shuffled results)."""

import _thread
import json
import os
import signal
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pandas as pd
import pytest

import llm_notebook
from llm_notebook import (
    batch_engine,
    batch_openai,
    cache,
    job_answers,
    job_store,
    job_submit,
    jobs,
    settings,
    store,
)
from llm_notebook.batch_spool import LineLog
from llm_notebook.budget import BudgetExceeded
from llm_notebook.errors import ModelError
from tests.magics_kernel import table_rows
from tests.support.batch_servers import OPENAI_KEY, batch_server, default_answer  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(batch_server):
    return batch_server


def reviews(count=4, *, fail=()):
    texts = [f"review {n}" + (" FAIL" if n in fail else "") for n in range(count)]
    return pd.DataFrame({"review": texts}, index=[f"id-{n}" for n in range(count)])


def sent_lines(server):
    """Every request line the server was given, over all its input files."""
    inputs = {batch.input_file_id for batch in server.batches.values()}
    return [json.loads(line) for file_id in sorted(inputs)
            for line in server.files[file_id].splitlines()]


def submit(frame, **arguments):
    return llm_notebook.map("Summarise: {review}", frame, model="gpt-4o-mini", batch=True,
                            **arguments)


def test_a_job_returns_at_once_and_its_result_has_the_inputs_index(server):
    frame = reviews()
    job = submit(frame, temperature=0.5, system="Be brief.")
    assert job.status == "validating" and job.counts["total"] == 4
    assert [b.polls for b in server.batches.values()] == [0]  # returned without waiting
    batch = next(iter(server.batches.values()))
    assert job.batch_ids == [batch.id]
    assert [j.id for j in llm_notebook.batches()] == [job.id]
    listed = table_rows(llm_notebook.batches()._repr_markdown_())
    assert listed[job.id][:3] == ["gpt-4o-mini", "validating", "0 of 4"]

    lines = sent_lines(server)
    assert [(line["custom_id"], line["method"], line["url"]) for line in lines] == [
        (f"r{n}", "POST", "/v1/chat/completions") for n in range(4)]
    body = lines[2]["body"]
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.5 and "stream" not in body
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Summarise: review 2"}]

    answers = job.wait(poll=0, progress=False).result()
    assert job.status == "completed"
    assert list(answers.index) == list(frame.index)
    assert list(answers) == [f"answer to: Summarise: review {n}" for n in range(4)]
    assert job.errors == {}


def test_results_arriving_out_of_order_are_matched_by_custom_id(server):
    frame = reviews(30)
    job = submit(frame)
    job.wait(poll=0, progress=False)
    output = server.files[server.batches[job.batch_ids[0]].results["output"]]
    order = [json.loads(line)["custom_id"] for line in output.splitlines()]
    assert order != sorted(order, key=lambda c: int(c[1:]))  # the server shuffled them
    assert list(job.result()) == [f"answer to: Summarise: review {n}" for n in range(30)]


def test_failed_rows_come_back_per_row_and_retry_failed_sends_only_those(server):
    server.answer = lambda params: None if "flaky" in json.dumps(params) else "fine"
    frame = reviews(5)
    frame.loc[["id-1", "id-3"], "review"] += " flaky"
    job = submit(frame).wait(poll=0, progress=False)
    answers = job.result()
    assert answers["id-0"] == "fine" and answers["id-1"] is None
    assert set(job.errors) == {"id-1", "id-3"}
    assert "HTTP 400" in job.errors["id-1"] and "refused" in job.errors["id-1"]
    assert job.counts == {"total": 5, "completed": 3, "failed": 2}

    server.answer = default_answer  # the provider answers them this time
    retried = job.retry_failed()
    assert retried.parent == job.id
    retried_lines = [json.loads(line) for line in
                     server.files[server.batches[retried.batch_ids[0]].input_file_id].splitlines()]
    assert [line["custom_id"] for line in retried_lines] == ["r1", "r3"]
    merged = retried.wait(poll=0, progress=False).result()
    assert list(merged.index) == list(frame.index)
    assert merged["id-1"] == "answer to: Summarise: review 1 flaky"
    assert merged["id-0"] == answers["id-0"] and retried.errors == {}


#: (model, what a row the batch expired before says, what a cancelled one says) of each engine
ENGINES = [("gpt-4o-mini", "batch_expired", "batch_cancelled"),
           ("claude-haiku-4-5", "expired", "cancelled before this request ran")]


@pytest.mark.parametrize("model, expired, _", ENGINES)
def test_an_expired_job_keeps_the_rows_that_finished(server, model, expired, _):
    server.rate = 10 / (24 * 3600)  # ten requests a day: the window ends with most not run
    job = llm_notebook.map("Summarise: {review}", reviews(40), model=model, batch=True)
    job.wait(poll=0, progress=False)
    assert job.status == "expired"
    answers = job.result()
    finished = [label for label, text in answers.items() if text is not None]
    assert 0 < len(finished) < 40
    assert all(answers[label] == f"answer to: Summarise: review {label[3:]}" for label in finished)
    assert len(job.errors) == 40 - len(finished)
    assert all(expired in message for message in job.errors.values())


@pytest.mark.parametrize("model, _, cancelled", ENGINES)
def test_cancel_keeps_the_rows_that_finished_and_retry_failed_sends_the_rest(server, model, _,
                                                                             cancelled):
    server.clock.per_poll = 0
    server.rate = 1.0  # one request a second of the server's clock
    job = llm_notebook.map("Summarise: {review}", reviews(20), model=model, batch=True)
    server.clock.advance(60 + 7.5)  # validated, then seven requests answered
    job.cancel()
    assert job.status == "cancelling"
    server.clock.advance(3600)
    job.wait(poll=0, progress=False)
    assert job.status == "cancelled"
    answers = job.result()
    assert [label for label, text in answers.items() if text is not None] == [
        f"id-{n}" for n in range(7)]
    assert set(job.errors) == {f"id-{n}" for n in range(7, 20)}
    assert all(cancelled in message for message in job.errors.values())

    server.clock.per_poll = 600
    retried = job.retry_failed()
    assert [c for c, _ in server.batches[retried.batch_ids[0]].requests] == [
        f"r{n}" for n in range(7, 20)]
    assert retried.wait(poll=0, progress=False).result().notna().all()


def test_rows_are_split_at_the_providers_request_limit(server, monkeypatch):
    monkeypatch.setattr(batch_openai, "LIMITS", batch_openai.Limits(requests=3, bytes=10**6))
    server.openai_limits = (3, 10**6)  # a batch over the limit would fail validation
    job = submit(reviews(8)).wait(poll=0, progress=False)
    assert [len(b.requests) for b in server.batches.values()] == [3, 3, 2]
    assert len(job.batch_ids) == 3 and job.status == "completed"
    assert list(job.result()) == [f"answer to: Summarise: review {n}" for n in range(8)]


def test_rows_are_split_at_the_providers_byte_limit(server, monkeypatch):
    line = len(batch_openai.OpenAIBatches(None).line("r0", {"model": "gpt-4o-mini", "messages": [
        {"role": "user", "content": "Summarise: review 0"}]})) + 1
    monkeypatch.setattr(batch_openai, "LIMITS",
                        batch_openai.Limits(requests=1000, bytes=2 * line + line // 2))
    server.openai_limits = (1000, 2 * line + line // 2)  # a bigger upload is refused
    plan = submit(reviews(5), dry_run=True)
    assert plan.batches == 1 and "to send in at least 1 batch " in plan.summary()
    job = submit(reviews(5)).wait(poll=0, progress=False)
    assert [len(b.requests) for b in server.batches.values()] == [2, 2, 1]
    assert all(len(server.files[b.input_file_id]) <= server.openai_limits[1]
               for b in server.batches.values())
    assert job.errors == {}


def test_rows_in_the_cache_are_not_sent_and_finished_rows_go_into_it(server, monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    frame = reviews(5, fail={4})
    first = llm_notebook.map("Summarise: {review}", frame.iloc[:2], model="gpt-4o-mini",
                             progress=False)  # two rows answered the ordinary way, and cached
    assert first.sent == 2 and first.errors == {}

    job = submit(frame)
    assert job.replayed == 2 and job.sent == 3
    assert [line["custom_id"] for line in sent_lines(server)] == ["r2", "r3", "r4"]
    answers = job.result(poll=0, progress=False)
    assert list(answers.iloc[:4]) == [f"answer to: Summarise: review {n}" for n in range(4)]
    assert answers["id-4"] is None

    again = llm_notebook.map("Summarise: {review}", frame.iloc[:4], model="gpt-4o-mini",
                             progress=False)
    assert again.replayed == 4 and again.sent == 0 and list(again) == list(answers.iloc[:4])

    second = submit(frame)  # running the cell again sends only the row without an answer
    assert second.replayed == 4 and second.sent == 1
    assert [line["custom_id"] for line in sent_lines(server)][3:] == ["r4"]


def test_collecting_twice_records_each_answer_once(server, monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    job = submit(reviews(3)).wait(poll=0, progress=False)
    job.result()
    jobs.batch(job.id).result()  # another handle on the same job, as another kernel would have
    logged = [row for row in llm_notebook.logs(n=50) if row["model"] == "gpt-4o-mini"]
    assert sorted(row["prompt"] for row in logged) == [f"Summarise: review {n}" for n in range(3)]


def test_reattach_by_the_jobs_id_or_a_provider_batch_id(server):
    job = submit(reviews(2))
    by_batch = llm_notebook.batch(job.batch_ids[0])
    assert by_batch.id == job.id and by_batch.status in ("in_progress", "completed")
    with pytest.raises(job_store.UnknownJobError, match="llm_notebook.batches"):
        llm_notebook.batch("job_nope")


def test_batch_reattaches_and_stays_the_module_map_lives_in(server):
    from llm_notebook import batch

    job = submit(reviews(2))
    assert batch(job.id).id == job.id and llm_notebook.batch(job.id).id == job.id
    assert batch.map is llm_notebook.map and "batch" in llm_notebook.__all__


def test_dry_run_projects_the_cost_at_batch_prices_and_sends_nothing(server):
    plan = submit(reviews(100), dry_run=True, max_tokens=50)
    assert server.calls == []
    assert plan.plan.to_send == 100 and plan.batches == 1
    assert plan.cost.known and plan.cost.dollars * 2 == plan.standard_cost.dollars
    assert "batch price" in plan.summary() and "nothing sent" in plan.summary()


def test_job_cost_is_at_batch_prices_in_its_summary(server):
    job = submit(reviews(3)).wait(poll=0, progress=False)
    assert job.usage.input > 0 and job.usage.output > 0
    standard = llm_notebook.prices.estimate(llm_notebook.get_model("gpt-4o-mini"),
                                            job.usage.input, job.usage.output)
    assert job.cost.dollars * 2 == standard.dollars and not job.cost.estimated
    assert "genai-prices batch price: openai gpt-4o-mini" in job.summary()


def test_max_cost_and_the_session_budget_refuse_a_job_before_anything_is_sent(server,
                                                                              monkeypatch):
    with pytest.raises(BudgetExceeded, match="Not submitted: this batch job .* its max_cost"):
        submit(reviews(50), max_cost=0.000001, max_tokens=1000)
    monkeypatch.setattr(settings, "budget", 0.000001)
    with pytest.raises(BudgetExceeded, match="session's budget"):
        submit(reviews(50), max_tokens=1000)
    assert server.calls == [] and llm_notebook.batches() == []


def test_what_a_batch_cannot_do_is_refused_in_one_line(server):
    with pytest.raises(TypeError, match="does not run tools"):
        submit(reviews(1), tools=[len])
    with pytest.raises(ValueError, match="has no provider batch engine"):
        llm_notebook.map("{review}", reviews(1), model="echo", batch=True)
    assert server.calls == []


def test_a_server_without_the_batch_api_is_one_clear_error(llm_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    with pytest.raises(ModelError, match="offers no Batch API .* leave out batch=True"):
        submit(reviews(2))
    assert llm_notebook.batches() == []  # nothing started, nothing kept


def test_a_batch_that_fails_validation_reports_why_on_every_row(server, monkeypatch):
    monkeypatch.setattr(batch_openai, "LIMITS", batch_openai.Limits(requests=10, bytes=10**6))
    server.openai_limits = (2, 10**6)  # the provider's limit is lower than we were told
    job = submit(reviews(3)).wait(poll=0, progress=False)
    assert job.status == "failed"
    assert set(job.errors) == {"id-0", "id-1", "id-2"}
    assert all("the batch failed" in m and "too_many_requests" in m for m in job.errors.values())
    assert job.result().isna().all()


def test_a_schema_gives_typed_columns_on_the_inputs_index(server):
    server.answer = lambda params: json.dumps({"stars": len(json.dumps(params)) % 5,
                                               "topic": "battery"})
    frame = reviews(3)
    job = submit(frame, schema="stars int, topic").wait(poll=0, progress=False)
    body = sent_lines(server)[0]["body"]
    assert body["response_format"]["type"] == "json_schema"
    table = job.result()
    assert list(table.index) == list(frame.index)
    assert str(table["stars"].dtype) == "Int64" and list(table["topic"]) == ["battery"] * 3



def test_multi_gives_a_row_per_item_and_replays_in_an_ordinary_map(server, monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    server.answer = lambda params: json.dumps({"items": [{"topic": "battery"},
                                                         {"topic": "screen"}]})
    frame = reviews(2)
    job = submit(frame, schema="topic", multi=True).wait(poll=0, progress=False)
    schema = sent_lines(server)[0]["body"]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["items"]["type"] == "array"
    table = job.result()
    assert list(table.index) == ["id-0", "id-0", "id-1", "id-1"]
    assert list(table["item"]) == [0, 1, 0, 1] and list(table["topic"]) == ["battery", "screen"] * 2
    again = llm_notebook.map("Summarise: {review}", frame, model="gpt-4o-mini", schema="topic",
                             multi=True, progress=False)  # the same requests: replayed
    assert again.replayed == 2 and again.sent == 0
    pd.testing.assert_frame_equal(pd.DataFrame(again), table)

def test_no_key_is_kept_in_the_jobs_files_or_shown(server, user_dir):
    job = submit(reviews(2)).wait(poll=0, progress=False)
    job.result()
    kept = b"".join(path.read_bytes() for path in user_dir.rglob("*") if path.is_file()
                    and path.suffix != ".db" and "-wal" not in path.name)
    assert OPENAI_KEY.encode() not in kept
    assert OPENAI_KEY not in repr(job) + job.summary() + job._repr_markdown_()
    assert all(call[2].get("authorization") == f"Bearer {OPENAI_KEY}" for call in server.calls)


def test_a_later_part_refused_keeps_the_started_batches(server, monkeypatch):
    monkeypatch.setattr(batch_openai, "LIMITS", batch_openai.Limits(requests=2, bytes=10**6))
    uploads = []
    real_upload = server.openai_upload

    def refuse_the_second(fields):
        uploads.append(fields)
        if len(uploads) == 2:
            return 400, {"error": {"message": "quota of files reached"}}
        return real_upload(fields)

    server.openai_upload = refuse_the_second
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = submit(reviews(4))
    assert any("quota of files reached" in str(w.message) for w in caught)
    assert len(job.batch_ids) == 1
    job.wait(poll=0, progress=False)
    answers = job.result()
    assert list(answers.iloc[:2]) == ["answer to: Summarise: review 0",
                                      "answer to: Summarise: review 1"]
    assert set(job.errors) == {"id-2", "id-3"}
    assert "not submitted" in job.errors["id-2"]
    server.openai_upload = real_upload
    assert job.retry_failed().wait(poll=0, progress=False).errors == {}


def test_a_list_input_gives_a_list_and_labels_errors_by_position(server):
    job = llm_notebook.map("Say {}", ["a", "b FAIL", "c"], model="gpt-4o-mini", batch=True)
    answers = job.result(poll=0, progress=False)
    assert answers == ["answer to: Say a", None, "answer to: Say c"]
    assert list(job.errors) == [1]


def test_only_mode_sends_nothing_and_says_which_rows_have_no_stored_answer(server, monkeypatch):
    monkeypatch.setattr(settings, "cache", "replay")
    submit(reviews(2)).result(poll=0, progress=False)
    server_batches = len(server.batches)
    with cache.mode("only"):
        job = submit(reviews(3))
    assert len(server.batches) == server_batches and job.status == "completed"
    answers = job.result()
    assert answers.iloc[:2].notna().all() and answers["id-2"] is None
    assert 'cache mode is "only"' in job.errors["id-2"]


def test_interrupting_wait_stops_the_waiting_never_the_job(server):
    server.clock.per_poll = 0  # the job never moves on its own
    job = submit(reviews(3))
    batch = server.batches[job.batch_ids[0]]
    real = server.openai_batch

    def interrupt_at_the_third_poll(polled):
        if polled is batch and batch.polls == 3:
            _thread.interrupt_main()  # as Ctrl-C (or the kernel's interrupt) would
        return real(polled)

    server.openai_batch = interrupt_at_the_third_poll
    with pytest.raises(jobs.JobStillRunning, match="runs on at the provider"):
        job.wait(poll=0.01, progress=False)
    assert batch.cancel_at is None and job.status == "validating"
    server.clock.per_poll = 600
    assert list(job.result(poll=0, progress=False)) == [
        f"answer to: Summarise: review {n}" for n in range(3)]


def test_an_openai_compatible_endpoint_that_offers_the_batch_api(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    ids = llm_notebook.add_openai_endpoint(server.openai_url, name="gpu-box",
                                           models=["local-7b"], api_key=OPENAI_KEY)
    job = llm_notebook.map("Summarise: {review}", reviews(2), model=ids[0], batch=True)
    assert sent_lines(server)[0]["body"]["model"] == "local-7b"
    assert list(job.result(poll=0, progress=False)) == [
        "answer to: Summarise: review 0", "answer to: Summarise: review 1"]
    assert "no price known for 'local-7b'" in job.summary()


def test_a_job_whose_folder_is_gone_says_so_in_one_line(server):
    job = submit(reviews(2)).wait(poll=0, progress=False)
    job_store.forget(job.id)
    job_store.save(job._record)  # the record is there, its folder is not
    lost = jobs.batch(job.id)
    with pytest.raises(llm_notebook.LLMNotebookError, match="has lost its folder"):
        lost.result()
    assert job.id in repr(lost)


def test_answers_already_paid_are_recorded_whatever_the_budget(server, monkeypatch):
    job = submit(reviews(3))
    monkeypatch.setattr(settings, "budget", 1e-12)  # set after the job was paid for
    with llm_notebook.budget.limit(1e-12):
        answers = job.result(poll=0, progress=False)
    assert list(answers) == [f"answer to: Summarise: review {n}" for n in range(3)]
    assert job.errors == {}


def test_the_sessions_costs_count_collected_answers_at_batch_prices(server):
    llm_notebook.prices.session_costs.reset()
    job = submit(reviews(20)).wait(poll=0, progress=False)
    total = llm_notebook.prices.session_costs.total()
    assert job.cost.dollars > 0 and total.dollars == job.cost.dollars


def test_the_key_is_in_no_repr_of_an_engines_access_or_a_jobs_spec(server):
    canary = "sk-canary-" + "7f3a9c" * 4
    model = llm_notebook.get_model("gpt-4o-mini")
    access = batch_engine.access_for(model, canary, server.openai_url)
    assert canary in access.request(server.openai_url + "/files").secret  # it is held
    spec = job_submit.JobSpec(model=model, key=canary, system=None, options={}, attachments=[],
                              schema=None)
    for shown in (repr(access), repr(spec), str(access), str(spec)):
        assert canary not in shown and canary[:12] not in shown


def test_a_budget_limit_block_in_force_refuses_a_job_before_anything_is_sent(server):
    with (llm_notebook.budget.limit(0.000001),
          pytest.raises(BudgetExceeded, match="Not submitted: .* this block's max_cost")):
        submit(reviews(50), max_tokens=1000)
    assert server.calls == [] and llm_notebook.batches() == []


def test_jobs_not_collected_yet_count_as_spent_until_they_are(server, monkeypatch):
    first = submit(reviews(50), max_tokens=1000)
    projected = first.cost
    assert projected.estimated and projected.dollars > 0
    monkeypatch.setattr(settings, "budget", float(projected.dollars) * 1.5)
    with pytest.raises(BudgetExceeded, match="projected for 1 batch job not collected yet"):
        submit(reviews(50), max_tokens=1000)
    with llm_notebook.budget.limit(float(projected.dollars) * 1.5):
        monkeypatch.setattr(settings, "budget", None)
        with pytest.raises(BudgetExceeded, match="this block's max_cost"):
            submit(reviews(50), max_tokens=1000)
        first.result(poll=0, progress=False)  # collected: its short answers cost far less
        second = submit(reviews(50), max_tokens=1000)
    assert [job.id for job in llm_notebook.batches()] == [second.id, first.id]


def test_an_uncapped_job_projects_a_default_output_and_says_it_is_a_guess(server):
    llm_notebook.prices.session_costs.reset()  # no earlier answer of the model
    guessed = submit(reviews(3))
    capped = submit(reviews(3), max_tokens=llm_notebook.budget.GUESSED_OUTPUT_TOKENS)
    assert guessed.cost.estimated and guessed.cost.dollars == capped.cost.dollars
    assert "output guessed at 256 tokens a row" in guessed.summary()
    assert "guessed" not in capped.summary()


def test_rows_of_a_part_whose_submitting_process_was_killed_fail_and_are_retried(server):
    """A real process killed with kill -9 while the server holds its upload: the part never
    got a batch id, and never will."""
    server.hold.add(("POST", "/v1/files"))
    script = ("import pandas as pd, llm_notebook\n"
              "llm_notebook.map('Summarise: {review}', pd.DataFrame({'review': ['a', 'b']}), "
              "model='gpt-4o-mini', batch=True)\n")
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        assert server.held.wait(timeout=60), "the child never uploaded"
        [uploading] = llm_notebook.batches()
        assert jobs.batch(uploading.id).status == "validating"  # its submitter still runs
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        server.released.set()
    [stored] = llm_notebook.batches()
    assert stored.status == "validating" and stored.batch_ids == []  # as last seen
    job = jobs.batch(stored.id)
    assert job.status == "failed" and job.wait(poll=0, progress=False).finished
    assert set(job.errors.values()) == {
        "not run: the batch failed (not submitted: the kernel submitting it stopped)"}
    server.hold.clear()
    retried = job.retry_failed()
    assert list(retried.result(poll=0, progress=False)) == ["answer to: Summarise: a",
                                                           "answer to: Summarise: b"]


@pytest.mark.parametrize("model, creating", [("gpt-4o-mini", ("POST", "/v1/batches")),
                                             ("claude-haiku-4-5",
                                              ("POST", "/v1/messages/batches"))])
def test_an_interrupt_while_the_provider_creates_the_batch_never_loses_it(server, model,
                                                                          creating):
    server.hold.add(creating)
    main = threading.main_thread().ident

    def interrupt_once_held():
        if server.held.wait(timeout=60):
            signal.pthread_kill(main, signal.SIGINT)
        server.released.set()

    interrupter = threading.Thread(target=interrupt_once_held)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            llm_notebook.map("Summarise: {review}", reviews(3), model=model, batch=True)
    finally:
        interrupter.join(timeout=60)
    [job] = llm_notebook.batches()
    assert job.batch_ids == list(server.batches)  # the batch the provider made, kept
    assert list(job.result(poll=0, progress=False)) == [
        f"answer to: Summarise: review {n}" for n in range(3)]


def test_collected_answers_are_marked_recorded_only_once_the_store_has_written_them(
        server, monkeypatch):
    """A crash cannot be timed to land between the store's write and the mark, so the store's
    flush is watched: each time collecting waits for the store to write a chunk, the job's
    answers.jsonl (what a crash then would leave marked recorded) holds only earlier chunks."""
    monkeypatch.setattr(job_answers, "CHUNK", 10)
    job = submit(reviews(25))
    marked, flush = [], store.flush

    def watched_flush(timeout=None):
        marked.append(len(list(LineLog(job.folder / job_submit.ANSWERS_FILE).entries())))
        return flush(timeout)

    monkeypatch.setattr(store, "flush", watched_flush)
    job.wait(poll=0, progress=False)
    assert marked == [0, 10, 20]
    monkeypatch.setattr(store, "flush", flush)
    logged = llm_notebook.log.logs(None)
    assert sorted(row["prompt"] for row in logged) == sorted(
        f"Summarise: review {n}" for n in range(25))


def test_a_jobs_summary_shows_the_providers_words_literally_in_a_notebook(server):
    from markdown_it import MarkdownIt

    job = submit(reviews(2))
    hostile = "**in_progress** [see](https://evil.example) <b>x</b>"
    job_store.change(job.id, lambda stored: stored["parts"][0].update(status=hostile))
    [listed] = llm_notebook.batches()  # as last seen: the provider's status as it said it
    shown = MarkdownIt("commonmark").render(listed._repr_markdown_())
    assert "<strong>" not in shown and "<a " not in shown and "<b>" not in shown
    assert "**in_progress** [see](https://evil.example) &lt;b&gt;x&lt;/b&gt;" in shown
