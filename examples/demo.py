"""A first run of llm_notebook from plain Python, on the offline models (no key, no network)."""

import io

import llm_notebook

print("Registered models:")
for entry in llm_notebook.get_models_with_aliases():
    kinds = "+".join(k for k, m in (("sync", entry.model), ("async", entry.async_model)) if m)
    print(f"  {entry.model_id:<10} {kinds:<11} {entry.any_model().description}")

print("\n--- echo, streamed chunk by chunk ---")
model = llm_notebook.get_model("echo")
png = io.BytesIO()
try:
    from PIL import Image

    Image.new("RGB", (64, 32), "teal").save(png, format="PNG")
    attachments = [png.getvalue()]
except ImportError:
    attachments = []
response = model.prompt("What is in this picture?", system="Answer briefly.", attachments=attachments)
for chunk in response:
    print(chunk, end="", flush=True)
usage = response.usage()
print(f"\nusage: {usage.input} in, {usage.output} out, {response.duration_ms()} ms")

print("\n--- markov, a two-turn conversation ---")
conversation = llm_notebook.get_model("markov").conversation()
print(conversation.prompt("the quick brown fox jumps over the lazy dog and the dog sleeps",
                          seed=7, length=12).text())
print(conversation.prompt("the fox runs away", seed=7, length=12).text())

print("\n--- the log keeps every response ---")
for row in llm_notebook.logs(3):
    print(f"  {row['datetime_utc'][:19]}  {row['model']:<7} {row['status']:<5} "
          f"{row['input_tokens']} in / {row['output_tokens']} out  {row['prompt']!r}")
