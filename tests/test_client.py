"""The client over the real path: frontend, codec, SavedModel and server; long-form, dialogue, errors."""

import time
from concurrent import futures

import grpc
import numpy as np
import pytest

from soundstorm.protos import model_contract_pb2
from soundstorm.runtime.client import (Client, ClientError, VoicePrompt, parse_transcript, read_audio,
                            write_audio)
from soundstorm.runtime.client import backends
from soundstorm.runtime.frontend import load_vocabulary
from soundstorm.runtime.serving.server import ModelServer, ServerOptions, single_model_config
from soundstorm.apps.cli.main import main
from tests.conftest import OTHER_SPEECH_TEXT, SPEECH_TEXT

@pytest.fixture(scope="module")
def client(speech_model):
    return Client.embedded(speech_model)


@pytest.fixture(scope="module")
def voice_file(speech, tmp_path_factory):
    path = tmp_path_factory.mktemp("voice") / "voice.wav"
    stereo = np.stack([speech[0], speech[0] * 0.5], axis=1)  # stereo on purpose
    return write_audio(path, stereo, 16_000)


@pytest.fixture(scope="module")
def voice(client, voice_file):
    return client.voice_prompt(voice_file, transcript=SPEECH_TEXT)


def test_embedded_backend_loads_the_newest_version_and_names_it(speech_model, tmp_path):
    import shutil
    base = tmp_path / "soundstorm"
    shutil.copytree(speech_model / "1", base / "9")
    shutil.copytree(speech_model / "1", base / "10")  # 10 is newer than 9 (numbers, not text)
    loaded = backends.EmbeddedBackend(base)
    assert (loaded.path, loaded.version) == (base / "10", 10)
    bare = tmp_path / "my-export"  # a SavedModel folder outside TF Serving's layout
    shutil.copytree(speech_model / "1", bare)
    assert backends.EmbeddedBackend(bare).version is None


def test_client_configures_itself_from_the_metadata_signature(client):
    assert (client.num_levels, client.codebook_size, client.frames_per_token) == (8, 256, 1)
    assert (client.max_frames, client.max_prompt_frames) == (64, 20)
    assert client.sample_rate == 16_000 and client.codec.num_levels == 8


def test_voice_prompt_is_the_tail_of_the_audio_within_budget(client, voice_file, voice, speech):
    assert voice.tokens.shape == (20, 8) and voice.semantic.shape == (20,)
    whole = client.codec.encode(*read_audio(voice_file))
    np.testing.assert_array_equal(voice.tokens, whole[-20:])
    no_text = client.voice_prompt(voice_file, prompt_seconds=0.2)
    assert no_text.tokens.shape[0] == 10
    assert (no_text.semantic == client.contract.semantic.unknown_id).all()


def test_long_form_has_the_requested_duration_and_seamless_joins(client, voice):
    semantic = client.text_to_semantic(OTHER_SPEECH_TEXT)
    speech = client.synthesize(semantic_tokens=semantic, voice=voice, seed=1)
    assert speech.windows >= 3  # 64-frame calls, 20-frame prompts
    assert speech.tokens.shape == (len(semantic), 8)
    assert speech.waveform.size == len(semantic) * client.codec.samples_per_frame
    # Windows go through one stateful decoder: the stitched audio is exactly the one-shot
    # decoding of all tokens, so a join is no different from any other frame boundary.
    np.testing.assert_array_equal(speech.waveform, client.codec.decode(speech.tokens))
    frame = client.codec.samples_per_frame
    jumps = np.abs(np.diff(speech.waveform))
    boundaries = jumps[frame - 1::frame]
    assert boundaries.max() <= np.percentile(jumps, 99.9) + 1e-6
    # Streaming yields the same audio, window by window.
    chunks = list(client.stream(semantic_tokens=semantic, voice=voice, seed=1))
    assert len(chunks) == speech.windows
    np.testing.assert_array_equal(np.concatenate(chunks), speech.waveform)


def test_dialogue_turns_come_in_order_each_as_if_alone(client, voice_file):
    voices = {"A": client.voice_prompt(voice_file), "B": client.voice_prompt(voice_file,
                                                                           prompt_seconds=0.3)}
    transcript = "A: Hello there.\n\nB: Hi.\nA: Bring shells."
    dialogue = client.dialogue(transcript, voices, seed=4)
    gap = np.zeros(round(0.25 * 16_000), np.float32)
    turns = [client.synthesize(text, voices[speaker], seed=4 + k)
             for k, (speaker, text) in enumerate(parse_transcript(transcript))]
    expected = np.concatenate([turns[0].waveform, gap, turns[1].waveform, gap,
                               turns[2].waveform])
    np.testing.assert_array_equal(dialogue.waveform, expected)
    assert dialogue.windows == 3


def test_embedded_and_grpc_give_identical_audio(speech_model, client, voice):
    server = ModelServer(single_model_config("soundstorm", speech_model),
                         ServerOptions(host="127.0.0.1", port=0, poll_seconds=0),
                         log=lambda message: None).start()
    try:
        remote = Client(f"127.0.0.1:{server.grpc_port}")
        assert remote.contract == client.contract
        text = "The quick brown fox."
        np.testing.assert_array_equal(remote.synthesize(text, voice, seed=7).waveform,
                                      client.synthesize(text, voice, seed=7).waveform)
        with pytest.raises(ClientError) as caught:
            remote.synthesize(semantic_tokens=np.array([999]), voice=voice)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
        remote.backend.deadline_seconds = 0.05
        servable = server.manager.resolve("soundstorm")
        run = servable.run
        servable.run = lambda *args: (time.sleep(0.5), run(*args))[1]
        with pytest.raises(ClientError) as caught:
            remote.synthesize(text, voice)
        assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        server.stop(1)


def test_unreachable_server_is_unavailable_after_retries():
    started = time.perf_counter()
    with pytest.raises(ClientError) as caught:
        Client("127.0.0.1:1", retries=2, deadline_seconds=2)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert time.perf_counter() - started < 30


def test_bad_inputs_are_clear_errors(client, voice, voice_file, tmp_path):
    with pytest.raises(ClientError, match="text is empty"):
        client.synthesize("   ", voice)
    # One error class for everything the library raises, with a code (the frontend's,
    # the codec's and a missing file's errors too, their original as __cause__).
    with pytest.raises(ClientError, match="no audio file") as caught:
        client.voice_prompt(tmp_path / "missing.wav")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    with pytest.raises(ClientError, match="nothing to say") as caught:
        client.synthesize("?!", voice)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    from soundstorm.runtime.frontend import FrontendError
    assert isinstance(caught.value.__cause__, FrontendError)
    with pytest.raises(ClientError, match=r"unsupported character .* at position 6"):
        client.synthesize("Emoji \U0001F600", voice)
    with pytest.raises(ClientError, match="no codec files|not found|missing") as caught:
        Client.embedded(client.backend.path, codec_dir=tmp_path / "no-codec").codec
    assert caught.value.__cause__ is not None
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF but not really a wav file")
    with pytest.raises(ClientError, match="cannot read audio"):
        client.voice_prompt(garbage)
    with pytest.raises(ClientError, match="prompt too long"):
        client.voice_prompt(voice_file, prompt_seconds=5)
    for nothing in (0, -1):
        with pytest.raises(ClientError, match=r"prompt too short: prompt_seconds must be in \(0, "):
            client.voice_prompt(voice_file, prompt_seconds=nothing)
    with pytest.raises(ClientError, match="voice must be a VoicePrompt .* got str"):
        client.synthesize("Hi.", str(voice_file))  # a path where a prompt belongs
    for name, value in (("temperature", 0.0), ("temperature", float("nan")),
                        ("choice_temperature", -1.0), ("choice_temperature", float("inf"))):
        with pytest.raises(ClientError, match=f"{name} must be a finite number"):
            client.stream("Hi.", voice, **{name: value})  # refused before the first window
    with pytest.raises(ClientError, match="semantic_tokens must lie in"):
        client.synthesize(semantic_tokens=np.array([1, 2, 500]), voice=voice)
    with pytest.raises(ClientError, match="no voice prompt for speaker"):
        client.dialogue("A: hi\nC: hello", {"A": voice})
    with pytest.raises(ClientError, match="line 1 is not"):
        parse_transcript("no speaker here")
    # Values of the wrong type are the caller's input too: INVALID_ARGUMENT naming the
    # argument, never an AttributeError, TypeError or ValueError from inside.
    for call, message in [
            (lambda: client.synthesize(123, voice), "text must be a str, got int"),
            (lambda: client.synthesize(["Hi."], voice), "text must be a str, got list"),
            (lambda: client.voice_prompt(voice_file, prompt_seconds="2"),
             "prompt_seconds must be a number of seconds, got str"),
            (lambda: client.voice_prompt(None), "audio must be a file path or a waveform"),
            (lambda: client.voice_prompt(b"RIFF"), "audio must be a file path or a waveform"),
            (lambda: client.voice_prompt(voice_file, transcript=5), "transcript must be a str"),
            (lambda: client.voice_prompt(np.zeros(16_000, np.float32), sample_rate=16_000.0),
             "sample_rate must be an int number of Hz, got float"),
            (lambda: client.synthesize_batch("Hi."), "items must be a list of"),
            (lambda: client.synthesize_batch([("Hi.",)]), r"items\[0\] must be a \(text"),
            (lambda: client.synthesize_batch([("Hi.", voice, 5)]), r"items\[0\] must be a \(text"),
            (lambda: client.dialogue(None, {"A": voice}), "transcript must be a str"),
            (lambda: client.dialogue("A: Hi.", [voice]), "voices must be a dict"),
            (lambda: Client(5), "target must be a str 'HOST:PORT', got int"),
            (lambda: Client("localhost"), "target must be 'HOST:PORT'"),
            (lambda: Client("host:notaport"), "target must be 'HOST:PORT'"),
            (lambda: Client("localhost:1", retries="x"), "retries must be an int in"),
            (lambda: Client("localhost:1", root_certificates="pem"),
             "root_certificates must be PEM bytes, got str"),
            (lambda: Client("localhost:1", version="1"), "version must be an int >= 0"),
            (lambda: Client("localhost:1", max_message_bytes="x"), "max_message_bytes must be"),
            (lambda: Client.embedded(client.backend.path, codec_dir=5),
             "codec_dir must be a folder path, got int"),
            (lambda: list(client.stream("Hi.", voice, timings=5)), "timings must be a Timings"),
            (lambda: Client.embedded(5), "model_dir must be a folder path, got int"),
            # float32 is what the model takes: 1e-300 arrives as 0, 1e39 as inf.
            (lambda: client.synthesize("Hi.", voice, temperature=1e-300),
             "temperature must be a finite number > 0 in float32"),
            (lambda: client.synthesize("Hi.", voice, choice_temperature=1e39),
             "choice_temperature must be a finite number >= 0 in float32")]:
        with pytest.raises(ClientError, match=message) as caught:
            call()
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    # A few milliseconds of audio carry no voice: at least MIN_PROMPT_SECONDS (1 s), or all
    # of a shorter prompt asked for.
    from soundstorm.runtime.client.client import MIN_PROMPT_SECONDS
    budget_s = client.max_prompt_frames / client.frame_rate_hz
    needed_s = min(budget_s, MIN_PROMPT_SECONDS)
    short = np.zeros(round(needed_s * 16_000) - 1, np.float32)
    seconds = short.size / 16_000
    with pytest.raises(ClientError, match=f"too short to use: {seconds:.2f} s of audio, and a "
                                          f"voice needs at least {needed_s:g} s"):
        client.voice_prompt(short, sample_rate=16_000)
    client.voice_prompt(np.zeros(short.size + 1, np.float32), sample_rate=16_000)


def test_synthesize_command_writes_a_wav_and_fails_cleanly(speech_model, voice_file, tmp_path,
                                                           capsys):
    out = tmp_path / "speech.wav"
    code = main(["synthesize", "--model", str(speech_model), "--text", "Hello there.",
                 "--voice", str(voice_file), "--voice-text", SPEECH_TEXT, "--out", str(out)])
    assert code == 0 and "wrote" in capsys.readouterr().out
    samples, rate = read_audio(out)
    assert rate == 16_000 and samples.size > 0
    semantic = tmp_path / "semantic.npy"
    np.save(semantic, np.array([3, 3, 4, 5, 5, 6] * 5, np.int32))
    assert main(["synthesize", "--model", str(speech_model), "--semantic-file", str(semantic),
                 "--voice", str(voice_file), "--out", str(tmp_path / "s.wav")]) == 0
    assert read_audio(tmp_path / "s.wav")[0].size == 30 * 320
    transcript = tmp_path / "dialogue.txt"
    transcript.write_text("A: Hello.\nB: Hi there.\n")
    assert main(["dialogue", "--model", str(speech_model), "--transcript", str(transcript),
                 "--voice", f"A={voice_file}", "--voice", f"B={voice_file}",
                 "--out", str(tmp_path / "d.wav")]) == 0
    capsys.readouterr()
    # Exit codes (apps/cli/exit_codes.py): 3 bad input, 4 an unreachable server.
    for args, message, exit_code in (
            (["--text", "", "--voice", str(voice_file)], "text is empty", 3),
            (["--text", "...", "--voice", str(voice_file)], "nothing to say", 3),
            (["--text", "Hi.", "--voice", str(tmp_path / "none.wav")], "no audio file", 3),
            (["--text", "Hi.", "--voice", str(voice_file), "--server", "127.0.0.1:1",
              "--deadline", "1"], "UNAVAILABLE", 4)):
        before = set(tmp_path.iterdir())
        assert main(["synthesize", "--model", str(speech_model), *args,
                     "--out", str(tmp_path / "bad.wav")]) == exit_code
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
        assert set(tmp_path.iterdir()) == before  # nothing half-written


def test_every_seed_the_cli_accepts_works_end_to_end(speech_model, voice_file, tmp_path, capsys):
    """The largest seed, with windows and turns after it (seed + k wraps into the range), and
    seeds outside the range refused at parse time (usage, exit 2) naming the range."""
    from soundstorm.runtime.client.seeds import MAX_SEED, derived_seed
    assert derived_seed(MAX_SEED, 1) == 0 and derived_seed(5, 2) == 7
    common = ["--model", str(speech_model), "--voice", str(voice_file)]
    long_text = "The quick brown fox jumps over the lazy dog, twice over, and then once more."
    assert main(["synthesize", *common, "--text", long_text, "--seed", str(MAX_SEED),
                 "--out", str(tmp_path / "long.wav")]) == 0
    assert " in 1 window" not in capsys.readouterr().out  # several windows after MAX_SEED
    transcript = tmp_path / "turns.txt"
    transcript.write_text("A: Hello.\nB: Hi there.\nA: Bye.\n")
    assert main(["dialogue", *common[:2], "--transcript", str(transcript), "--voice",
                 f"A={voice_file}", "--voice", f"B={voice_file}", "--seed", str(MAX_SEED),
                 "--out", str(tmp_path / "d.wav")]) == 0
    capsys.readouterr()
    for seed in ("4294967296", "2147483648", "-1", "1.5", "x"):
        with pytest.raises(SystemExit) as exited:
            main(["synthesize", *common, "--text", "Hi.", "--seed", seed,
                  "--out", str(tmp_path / "x.wav")])
        assert exited.value.code == 2
        assert f"must be an integer in [0, 2147483647], got '{seed}'" in capsys.readouterr().err


def test_the_client_refuses_seeds_outside_the_models_range(client, voice):
    for seed in (-1, 2**31, True, 1.0):
        with pytest.raises(ClientError, match=r"seed must be an integer in \[0, 2147483647\]"):
            client.synthesize("Hi.", voice, seed=seed)
    assert client.synthesize("Hi.", voice, seed=np.int64(2**31 - 1)).waveform.size


def test_text_files_as_editors_write_them(speech_model, voice_file, tmp_path, capsys):
    """A newline at the end, CRLF, typographic punctuation, a UTF-8 BOM or UTF-16 (Notepad)
    are read; a file in another encoding is one line naming it (bad input, exit 3)."""
    text = "We\u2019re here at 3:30 pm.\r\nIt costs $5 \u2014 or \u201cabout\u201d that.\r\n"
    common = ["synthesize", "--model", str(speech_model), "--voice", str(voice_file)]
    for name, data in (("utf8.txt", text.encode()), ("bom.txt", text.encode("utf-8-sig")),
                       ("utf16.txt", text.encode("utf-16"))):
        (tmp_path / name).write_bytes(data)
        assert main([*common, "--text-file", str(tmp_path / name),
                     "--out", str(tmp_path / f"{name}.wav")]) == 0, name
    (tmp_path / "latin1.txt").write_bytes("Caf\u00e9 au lait.".encode("latin-1"))
    capsys.readouterr()
    assert main([*common, "--text-file", str(tmp_path / "latin1.txt"),
                 "--out", str(tmp_path / "l.wav")]) == 3
    err = capsys.readouterr().err
    assert "latin1.txt is not UTF-8 text (byte 0xe9 at offset 3); save it as UTF-8" in err


def test_a_successful_synthesize_writes_nothing_to_stderr_but_its_progress(
        speech_model, voice_file, tmp_path):
    """No TensorFlow, absl, oneDNN, CUDA or LiteRT lines: stderr holds the progress bar only
    (its carriage-return updates), stdout the one result line."""
    import os
    import re
    import subprocess
    import sys
    env = {key: value for key, value in os.environ.items()
           if key not in ("SOUNDSTORM_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    run = subprocess.run(
        [sys.executable, "-m", "soundstorm.apps.cli", "synthesize", "--model", str(speech_model),
         "--voice", str(voice_file), "--text", "Hello there.", "--out", str(tmp_path / "q.wav")],
        capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    segments = [segment for segment in re.split(r"[\r\n]", run.stderr) if segment.strip()]
    assert segments and all(segment.startswith("synthesizing: ") for segment in segments), \
        run.stderr
    assert run.stdout.startswith("wrote ") and len(run.stdout.splitlines()) == 1, run.stdout


def test_a_batch_is_one_call_and_gives_each_item_its_solo_result(client, voice, monkeypatch):
    calls = []
    generate = client.backend.generate
    monkeypatch.setattr(client.backend, "generate",
                        lambda inputs, *rest: calls.append(inputs["seeds"].size) or
                        generate(inputs, *rest))
    items = [("Hello there.", voice), (np.array([3, 4, 4, 5, 6] * 4, np.int32), voice)]
    batch = client.synthesize_batch(items, seed=2)
    assert calls == [2]  # both in one call
    for k, (item, _) in enumerate(items):
        alone = client.synthesize(item if isinstance(item, str) else None, voice,
                                  semantic_tokens=None if isinstance(item, str) else item,
                                  seed=2 + k)
        np.testing.assert_array_equal(batch[k].waveform, alone.waveform)


def test_client_over_tls(speech_model, voice, tmp_path):
    import subprocess
    from soundstorm.protos import tf_serving_config_pb2
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    ssl = tf_serving_config_pb2.SSLConfig(server_key=key.read_text(), server_cert=cert.read_text())
    server = ModelServer(single_model_config("soundstorm", speech_model),
                         ServerOptions(host="127.0.0.1", port=0, poll_seconds=0, ssl=ssl),
                         log=lambda message: None).start()
    try:
        remote = Client(f"localhost:{server.grpc_port}", root_certificates=cert.read_bytes())
        assert remote.synthesize("Hi.", voice).waveform.size > 0
    finally:
        server.stop(1)


# The retry policy against a real gRPC server that fails on purpose: gRPC's own retries
# (a service config, gRFC A6) retry UNAVAILABLE only (a server starting, restarting or
# shedding load), `retries` times with exponential backoff, all inside the call's deadline;
# every other status code is the server's answer and comes back at once.

class _ScriptedPredictionService:
    """A PredictionService whose Predict fails with the scripted codes, in order, then answers."""

    def __init__(self):
        self.failures, self.attempts = [], 0

    def Predict(self, request, context):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2
        self.attempts += 1
        if self.failures:
            context.abort(self.failures.pop(0), "scripted failure")
        response = predict_pb2.PredictResponse()
        response.outputs["acoustic_tokens"].CopyFrom(
            tf.make_tensor_proto(np.arange(6, dtype=np.int32).reshape(1, 2, 3)))
        return response


@pytest.fixture(scope="module")
def scripted_server():
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    service = _ScriptedPredictionService()
    servicer = type("Servicer", (prediction_service_pb2_grpc.PredictionServiceServicer,),
                    {"Predict": lambda self, request, context: service.Predict(request, context)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, f"127.0.0.1:{port}"
    server.stop(0)


@pytest.fixture
def scripted(scripted_server):
    """(service, a backend to it with the default 3 retries and 600 s deadline)."""
    service, target = scripted_server
    service.failures, service.attempts = [], 0
    backend = backends.GrpcBackend(target, model_name="soundstorm")
    yield service, backend
    backend.close()


def test_unavailable_is_retried_with_backoff_until_it_succeeds(scripted):
    service, backend = scripted
    service.failures = [grpc.StatusCode.UNAVAILABLE] * 3
    started = time.perf_counter()
    outputs = backend.generate({"probe": np.zeros(1, np.int32)})
    assert service.attempts == 4  # the first try and 3 retries
    np.testing.assert_array_equal(outputs["acoustic_tokens"], np.arange(6).reshape(1, 2, 3))
    # gRPC's backoff: each wait is random in [0, 0.5 s x 2^k], so at most 3.5 s in all.
    assert time.perf_counter() - started < 3.5 + 2.0
    # The default deadline (docs/client.md): 30 s of audio on a CPU fits in one call.
    assert backend.deadline_seconds == 600.0


def test_unavailable_after_every_retry_is_an_unavailable_error(scripted_server):
    service, target = scripted_server
    for retries, attempts in ((3, 4), (0, 1)):
        service.failures, service.attempts = [grpc.StatusCode.UNAVAILABLE] * 6, 0
        backend = backends.GrpcBackend(target, retries=retries)
        with pytest.raises(ClientError) as caught:
            backend.generate({"probe": np.zeros(1, np.int32)})
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        assert service.attempts == attempts
        backend.close()
    with pytest.raises(ClientError, match=r"retries must be an int in \[0, 4\]"):
        backends.GrpcBackend(target, retries=5)


def test_the_deadline_bounds_all_attempts_together(scripted_server):
    """Retries never stretch a call past its deadline (the old loop gave each attempt the
    whole deadline: 4 x 600 s at worst)."""
    service, target = scripted_server
    service.failures, service.attempts = [grpc.StatusCode.UNAVAILABLE] * 6, 0
    backend = backends.GrpcBackend(target, deadline_seconds=0.6)
    started = time.perf_counter()
    with pytest.raises(ClientError) as caught:
        backend.generate({"probe": np.zeros(1, np.int32)})
    assert time.perf_counter() - started < 0.6 + 0.5
    assert caught.value.code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE)
    backend.close()


@pytest.mark.parametrize("code", [code for code in grpc.StatusCode
                                  if code not in (grpc.StatusCode.OK,
                                                  grpc.StatusCode.UNAVAILABLE)],
                         ids=lambda code: code.name)
def test_every_other_status_code_is_an_answer_and_never_retried(scripted, code):
    service, backend = scripted
    service.failures = [code]  # a retry would succeed: it must not happen
    with pytest.raises(ClientError) as caught:
        backend.generate({"probe": np.zeros(1, np.int32)})
    assert caught.value.code == code and "scripted failure" in caught.value.message
    assert service.attempts == 1


def test_the_channel_allows_64_mib_keepalive_a_server_accepts_and_retries_by_policy(
        monkeypatch):
    """The client's channel options (docs/client.md): messages up to the server's default
    64 MiB cap each way; keepalive pings only during a call and 6 minutes apart (gRPC's
    default server enforcement allows one per 5 minutes, none between calls); retries as a
    service config; round-robin over a fleet."""
    import json
    seen, channel = {}, grpc.insecure_channel
    monkeypatch.setattr(grpc, "insecure_channel", lambda target, options: channel(
        target, seen.setdefault("options", options)))
    backends.GrpcBackend("127.0.0.1:1").close()
    options = dict(seen["options"])
    config = json.loads(options.pop("grpc.service_config"))
    assert options == {
        "grpc.max_receive_message_length": 64 * 2**20, "grpc.max_send_message_length": 64 * 2**20,
        "grpc.keepalive_time_ms": 360_000, "grpc.keepalive_timeout_ms": 20_000,
        "grpc.keepalive_permit_without_calls": 0, "grpc.enable_retries": 1,
        "grpc.lb_policy_name": "round_robin"}
    assert config["methodConfig"][0]["retryPolicy"] == {
        "maxAttempts": 4, "initialBackoff": "0.5s", "maxBackoff": "8s", "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"]}
    with pytest.raises(TypeError):  # only the target and the model name go by position
        backends.GrpcBackend("127.0.0.1:1", "soundstorm", 2)


@pytest.mark.parametrize("kwargs, accepted", [
    ({"target": "127.0.0.1:1"}, True), ({"target": "127.0.0.1:65535"}, True),
    ({"target": "[::1]:8500"}, True), ({"target": "dns:///fleet:8500"}, True),
    ({"target": "unix:/tmp/socket"}, True),
    ({"target": "127.0.0.1:0"}, False), ({"target": "127.0.0.1:65536"}, False),
    ({"target": "127.0.0.1:70000"}, False),
    ({"target": ":8500"}, False), ({"target": "127.0.0.1:-1"}, False), ({"target": 8500}, False),
    ({"retries": 0}, True), ({"retries": 4}, True), ({"retries": -1}, False),
    ({"retries": 5}, False), ({"retries": True}, False),
    ({"version": 0}, True), ({"version": 7}, True), ({"version": -1}, False), ({"version": True}, False),
    ({"max_message_bytes": 1}, True), ({"max_message_bytes": 2**31 - 1}, True),
    ({"max_message_bytes": 0}, False), ({"max_message_bytes": -1}, False),
    ({"max_message_bytes": 2**31}, False), ({"max_message_bytes": 2**40}, False),
    ({"max_message_bytes": True}, False),
    ({"deadline_seconds": 1e-3}, True), ({"deadline_seconds": 0}, False),
    ({"deadline_seconds": -1.0}, False), ({"deadline_seconds": float("inf")}, False),
    ({"deadline_seconds": float("nan")}, False), ({"deadline_seconds": True}, False),
    ({"connect_seconds": 1e-3}, True), ({"connect_seconds": 0}, False),
    ({"model_name": ""}, False), ({"version_label": 5}, False)],
    ids=lambda value: repr(value) if not isinstance(value, bool) else str(value))
def test_the_grpc_backends_arguments_at_their_bounds(kwargs, accepted):
    """Each argument's range, just inside and just outside: ports 1-65535, retries 0-4 (gRPC
    caps maxAttempts at 5), versions from 0, messages below 2 GiB (a protobuf's limit),
    deadlines finite and positive. Refused means INVALID_ARGUMENT, before any channel."""
    kwargs = {"target": "127.0.0.1:1", **kwargs}
    if accepted:
        backends.GrpcBackend(**kwargs).close()
        return
    with pytest.raises(ClientError) as caught:
        backends.GrpcBackend(**kwargs)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_connecting_waits_the_connect_time_within_the_deadline():
    """The first call waits DEFAULT_CONNECT_SECONDS (20 s) for a connection, or the given
    connect_seconds, but never longer than the whole call's deadline."""
    for kwargs, expected in (({}, 20.0), ({"connect_seconds": 1.5}, 1.5),
                             ({"deadline_seconds": 5.0}, 5.0),
                             ({"connect_seconds": 9.0, "deadline_seconds": 2.0}, 2.0)):
        backend = backends.GrpcBackend("127.0.0.1:1", **kwargs)
        assert backend.connect_seconds == expected, kwargs
        backend.close()
    started = time.perf_counter()
    with pytest.raises(ClientError, match=r"no server answers there \(waited 0.5 s"):
        backends.GrpcBackend("127.0.0.1:1", connect_seconds=0.5).contract()
    assert 0.4 < time.perf_counter() - started < 5


def test_no_retries_means_no_retry_policy_and_one_attempt():
    import json
    assert "retryPolicy" not in json.loads(
        backends.retry_service_config(0))["methodConfig"][0]
    for retries in (1, 2, 4):  # the first attempt and `retries` more
        assert json.loads(backends.retry_service_config(retries))["methodConfig"][0][
            "retryPolicy"]["maxAttempts"] == retries + 1


def test_an_idle_client_is_not_cut_off_by_the_servers_ping_enforcement(
        scripted_server, monkeypatch, capfd):
    """A client idle past the server's ping enforcement then calls successfully, with nothing
    logged. The enforcement is gRPC's default (no pings between calls, two strikes), its
    interval scaled from 300 s to 1 s, the client's keepalive from 360 s to 1.2 s; the
    settings this replaced (pings every 30 s, also between calls; scaled to 0.1 s) are cut
    off (GOAWAY too_many_pings, logged), which shows the test can fail."""
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    service, _ = scripted_server
    servicer = type("Servicer", (prediction_service_pb2_grpc.PredictionServiceServicer,),
                    {"Predict": lambda self, request, context: service.Predict(request, context)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 1000),
        ("grpc.http2.max_ping_strikes", 2)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer(), server)
    target = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        results = {}
        for name, keepalive_ms, between_calls in (("ours", 1200, 0), ("old", 100, 1)):
            monkeypatch.setattr(backends, "KEEPALIVE_TIME_MS", keepalive_ms)
            backend = backends.GrpcBackend(target, retries=0)
            if between_calls:
                backend._channel.close()
                # max_pings_without_data 0: what happens within ~2 minutes at full scale (the
                # old settings against a default server: UNAVAILABLE "Too many pings").
                backend._channel = grpc.insecure_channel(target, options=[
                    ("grpc.keepalive_time_ms", keepalive_ms),
                    ("grpc.keepalive_permit_without_calls", 1),
                    ("grpc.http2.max_pings_without_data", 0)])
                backend._stub = prediction_service_pb2_grpc.PredictionServiceStub(
                    backend._channel)
            service.failures, service.attempts = [], 0
            backend.generate({"probe": np.zeros(1, np.int32)})  # connects
            time.sleep(4)  # idle past the enforcement
            try:
                backend.generate({"probe": np.zeros(1, np.int32)})
                results[name] = "ok"
            except ClientError as error:
                results[name] = error.code.name
            backend.close()
            results[name + " log"] = "too_many_pings" in capfd.readouterr().err
        assert results["ours"] == "ok" and not results["ours log"], results
        assert results["old"] == "UNAVAILABLE" or results["old log"], results
    finally:
        server.stop(0)


def test_an_embedded_models_own_check_is_a_client_error_with_its_code(speech_model):
    """A request the SavedModel's in-graph checks refuse (a semantic token outside the
    vocabulary passes the dtype and shape checks) comes back as ClientError
    INVALID_ARGUMENT with TensorFlow's one-line message, not as a TensorFlow exception."""
    backend = backends.EmbeddedBackend(speech_model)
    contract = backend.contract()
    frames, ratio = 32, contract.semantic.frames_per_token
    inputs = {"semantic_tokens": np.full((1, frames // ratio), 10**6, np.int32),
              "prompt_tokens": np.zeros((1, 8, contract.acoustic.num_levels), np.int32),
              "prompt_lengths": np.array([4], np.int32), "lengths": np.array([frames], np.int32),
              "seeds": np.zeros(1, np.int32), "temperature": np.ones(1, np.float32),
              "choice_temperature": np.ones(1, np.float32)}
    with pytest.raises(ClientError) as caught:
        backend.generate(inputs)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "semantic" in caught.value.message and "\n" not in caught.value.message


# Long form against a backend that records every request: each window after the first is
# prompted with half the voice prompt and the tail of the frames generated before it.

def _fake_contract() -> model_contract_pb2.ModelContract:
    contract = model_contract_pb2.ModelContract(max_frames=64, max_prompt_frames=20,
                                                frame_buckets=[32, 64], default_temperature=0.7,
                                                default_choice_temperature=1.5)
    contract.codec.name, contract.codec.sample_rate = "fake", 16_000
    contract.semantic.frames_per_token, contract.semantic.unknown_id = 2, 99
    contract.semantic.rate_hz = 25
    contract.acoustic.num_levels, contract.acoustic.codebook_size = 3, 256
    contract.acoustic.frame_rate_hz = 50
    return contract


class _RecordingBackend:
    """Returns the prompt as given and random tokens after it; keeps requests and outputs."""

    def __init__(self):
        self.requests, self.outputs = [], []

    def contract(self):
        return _fake_contract()

    def generate(self, inputs, signature="serving_default"):
        self.requests.append({key: value.copy() for key, value in inputs.items()})
        batch, tokens_per_row = inputs["semantic_tokens"].shape
        rng = np.random.default_rng(len(self.requests))
        tokens = rng.integers(0, 256, (batch, tokens_per_row * 2, 3)).astype(np.int32)
        for row, length in enumerate(inputs["prompt_lengths"]):
            tokens[row, :length] = inputs["prompt_tokens"][row, :length]
        self.outputs.append(tokens)
        return {"acoustic_tokens": tokens}

    def close(self):
        pass


class _FakeCodec:
    """4 samples per frame: a frame's audio is its first level's token, repeated; encoding
    gives 50 frames per second of 16 kHz audio (320 samples each)."""
    samples_per_frame = 4

    def stream_decoder(self):
        return self.decode

    def decode(self, tokens):
        return np.repeat(tokens[:, 0].astype(np.float32), 4)

    def encode(self, waveform, sample_rate):
        return np.arange(len(waveform) // 320 * 3, dtype=np.int32).reshape(-1, 3) % 256


def _fake_client(backend=None) -> Client:
    client = Client.__new__(Client)
    client._init(backend or _RecordingBackend(), None)
    client._codec = _FakeCodec()
    return client


def test_each_window_is_prompted_with_the_tail_of_the_previous_window():
    backend = _RecordingBackend()
    client = Client.__new__(Client)
    client._init(backend, None)
    client._codec = _FakeCodec()
    voice = VoicePrompt(tokens=np.arange(60, dtype=np.int32).reshape(20, 3) + 100,
                        semantic=np.arange(80, 90, dtype=np.int32))
    semantic = np.arange(60, dtype=np.int32)  # 120 frames; 44 fit after a 20-frame prompt
    speech = client.synthesize(semantic_tokens=semantic, voice=voice, seed=5)

    requests, outputs = backend.requests, backend.outputs
    assert speech.windows == len(requests) == 3
    assert [r["prompt_lengths"][0] for r in requests] == [20, 20, 20]
    assert [r["lengths"][0] for r in requests] == [64, 64, 52]  # prompt + 22, 22, 16 tokens
    assert [r["seeds"][0] for r in requests] == [5, 6, 7]
    generated = [out[0, 20:r["lengths"][0]] for out, r in zip(outputs, requests)]
    assert [g.shape[0] for g in generated] == [44, 44, 32]
    # Window 1: the whole voice prompt, then the first 22 target tokens.
    np.testing.assert_array_equal(requests[0]["prompt_tokens"][0], voice.tokens)
    np.testing.assert_array_equal(requests[0]["semantic_tokens"][0, :32],
                                  np.r_[80:90, 0:22])
    # Windows 2 and 3: the last 10 voice frames, then the last 10 frames window k generated,
    # with their semantic tokens (5 each at 2 frames per token), then the next targets.
    for k in (1, 2):
        prompt = requests[k]["prompt_tokens"][0]
        np.testing.assert_array_equal(prompt[10:], generated[k - 1][-10:])
        np.testing.assert_array_equal(prompt[:10], voice.tokens[10:])
    np.testing.assert_array_equal(requests[1]["semantic_tokens"][0],
                                  np.r_[85:90, 17:22, 22:44])
    np.testing.assert_array_equal(requests[2]["semantic_tokens"][0, :26],
                                  np.r_[85:90, 39:44, 44:60])
    # What comes back is the generated frames only, window after window, and their audio.
    np.testing.assert_array_equal(speech.tokens, np.concatenate(generated))
    np.testing.assert_array_equal(speech.waveform, np.repeat(speech.tokens[:, 0], 4))


@pytest.mark.parametrize("extension,max_error", [("wav", 1 / 2**15), ("flac", 1 / 2**15),
                                                 ("ogg", 0.05), ("mp3", 0.08)])
def test_write_audio_writes_what_each_extension_means(tmp_path, extension, max_error):
    """16-bit PCM where the format holds it, else the format's own encoding (Vorbis, MP3):
    read back at the same rate and length, within the format's error."""
    import soundfile
    t = np.arange(8_000) / 16_000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = write_audio(tmp_path / f"tone.{extension}", tone, 16_000)
    back, rate = soundfile.read(path, dtype="float32")
    assert rate == 16_000 and back.shape == tone.shape
    assert np.abs(back - tone).max() <= max_error
    assert soundfile.info(str(path)).format == extension.upper()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"tone.{extension}"]  # no .partial


@pytest.mark.parametrize("name", ["tone.opus", "tone.m4a", "tone.txt"])
def test_write_audio_refuses_a_format_it_cannot_write_and_leaves_nothing(tmp_path, name):
    with pytest.raises(ClientError, match=f"cannot write .{name.split('.')[1]} audio; use .wav, "
                                          ".flac, .ogg or .mp3") as caught:
        write_audio(tmp_path / name, np.zeros(160, np.float32), 16_000)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(tmp_path.iterdir()) == []


def test_a_batch_sends_what_fits_one_call_together_and_windows_the_rest():
    """synthesize_batch: items whose prompt and target fit max_frames (64 here) go in one
    call; a longer one is generated in windows like synthesize; no request exceeds max_frames."""
    backend = _RecordingBackend()
    client = _fake_client(backend)
    voice = VoicePrompt(tokens=np.ones((20, 3), np.int32), semantic=np.ones(10, np.int32))
    short, long = np.arange(10, dtype=np.int32), np.arange(60, dtype=np.int32)
    short_out, long_out = client.synthesize_batch([(short, voice), (long, voice)], seed=3)
    assert [r["seeds"].tolist() for r in backend.requests] == [[3], [4], [5], [6]]
    assert all(r["lengths"].max() <= 64 for r in backend.requests)
    assert (short_out.windows, long_out.windows) == (1, 3)
    assert (short_out.tokens.shape[0], long_out.tokens.shape[0]) == (20, 120)


def test_semantic_tokens_lie_in_the_vocabulary_and_the_unknown_id():
    """Ids 0 to contract.semantic.unknown_id (99 here) inclusive, 1-D, integers, not empty."""
    client = _fake_client()
    voice = VoicePrompt(tokens=np.ones((20, 3), np.int32), semantic=np.ones(10, np.int32))
    assert client.synthesize(semantic_tokens=np.array([0, 99, 5]), voice=voice).tokens.shape \
        == (6, 3)
    for tokens, message in (([100], r"must lie in \[0, 99\]"), ([-1], r"must lie in \[0, 99\]"),
                            ([[1, 2]], "non-empty 1-D integer array, got int64 \\[1, 2\\]"),
                            ([], "non-empty 1-D"), ([1.0], "non-empty 1-D integer")):
        with pytest.raises(ClientError, match=message) as caught:
            client.synthesize(semantic_tokens=np.array(tokens), voice=voice)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_transcribed_voice_prompt_has_one_semantic_token_per_frames_per_token():
    """The transcript's semantic tokens are cut to the prompt's frames: P frames, P / 2 tokens
    at 2 frames per token (the tail of both, aligned)."""
    client = _fake_client()
    client.contract.semantic.vocabulary = "espeak-phonemes-v1"
    client.contract.semantic.unknown_id = load_vocabulary("v1").size
    voice = client.voice_prompt(np.zeros(3 * 16_000, np.float32), sample_rate=16_000,
                                transcript="Hello there, how are you today?")
    assert voice.tokens.shape == (20, 3) and voice.semantic.shape == (10,)
    no_text = client.voice_prompt(np.zeros(3 * 16_000, np.float32), sample_rate=16_000)
    assert no_text.semantic.shape == (10,)


def test_timings_add_up_to_no_more_than_the_call(client, voice):
    """Each part of Timings is time actually spent in this call: none negative, together no
    more than the call's wall time, first calls part of the model's time."""
    for run in (lambda: client.synthesize("Hello there.", voice).timings,
                lambda: _fake_client().synthesize(semantic_tokens=np.arange(10), voice=VoicePrompt(
                    tokens=np.ones((20, 3), np.int32), semantic=np.ones(10, np.int32))).timings):
        started = time.perf_counter()
        timings = run()
        wall = time.perf_counter() - started
        parts = (timings.frontend_s, timings.model_s, timings.codec_s, timings.first_calls_s)
        assert min(parts) >= 0 and sum(parts[:3]) <= wall, (parts, wall)
        assert timings.first_calls_s <= timings.model_s


def test_a_short_stereo_waveform_is_measured_in_samples_not_channels(client):
    """A waveform array [samples, channels] too short for a voice: the error gives its
    length in seconds from its samples."""
    from soundstorm.runtime.client.client import MIN_PROMPT_SECONDS
    budget_s = client.max_prompt_frames / client.frame_rate_hz
    needed_s = min(budget_s, MIN_PROMPT_SECONDS)
    samples = round(needed_s * 16_000) - 160
    with pytest.raises(ClientError, match=f"too short to use: {samples / 16_000:.2f} s of audio"):
        client.voice_prompt(np.zeros((samples, 2), np.float32), sample_rate=16_000)
