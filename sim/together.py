"""Together AI's fine-tuning API, simulated for ftsim under /together/v1.

NO TRAINING HAPPENS HERE. Loaded by ftsim.py, which owns the HTTP server, the
key check, the request log and the scripted faults; this module only routes the
Together paths and answers them. A client's base URL is
http://127.0.0.1:PORT/together/v1 with header "Authorization: Bearer KEY".

Shapes follow Together's v1 Python SDK (togethercomputer/together-python,
src/together/types/{files,finetune,endpoints}.py) and, where newer, the v2 SDK
(togethercomputer/together-py):

  POST   /files/upload               multipart: file_name, purpose, file_type?, file
  GET    /files                      {"object":"list","data":[file]} (no paging)
  GET    /files/{id}                 the File object (Processed, FileType, LineCount,
  DELETE /files/{id}                   processing_status, validation_report)
  POST   /fine-tunes                 JSON; unknown top-level keys are refused
  GET    /fine-tunes                 {"data":[truncated job]} (no paging)
  GET    /fine-tunes/{id}
  POST   /fine-tunes/{id}/cancel
  GET    /fine-tunes/{id}/events     {"object":"list","data":[event]} oldest first
  GET    /fine-tunes/{id}/checkpoints {"data":[{step, checkpoint_type, created_at, path, checkpoint}]}
  POST   /fine-tunes/estimate-price  estimated_total_price in DOLLARS (a float)
  GET    /fine-tunes/models/limits?model=
  POST   /endpoints, GET /endpoints, GET|PATCH|DELETE /endpoints/{id}, GET /hardware
  POST   /chat/completions           answers only for the name of a STARTED endpoint

Files are checked when they are processed (file_processing_seconds after the
upload, computed when looked at) with the rules of the SDK's
utils/files.py check_file; the first violation is reported as "Line N: ...".
Jobs move pending -> queued -> running -> compressing -> uploading -> completed
over ftsim's --job-seconds. Job timestamps are ISO-8601 strings; file
created_at is a Unix integer; total_price is an integer in nano-dollars.
"""

import json
import math
import os
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from functools import partial

PREFIX = "/together/v1"
USER = "ftsim-user"
NANO = 1_000_000_000

# Fault endpoint names that only Together has (ftsim adds them to ENDPOINTS).
FAULT_ENDPOINTS = {"estimate", "deploy", "endpoint", "endpoint_update", "endpoint_delete",
                   "list_endpoints", "hardware", "chat", "limits"}

DEFAULT_CONF = {
    "file_processing_seconds": 0.5,   # upload -> Processed
    "endpoint_start_seconds": 1.0,    # PENDING/STARTING -> STARTED
    "endpoint_stop_seconds": 0.3,     # STOPPING -> STOPPED
    "cancel_seconds": 0.3,            # cancel_requested -> cancelled
    "user_limit": 1000.0,             # dollars, for estimate-price's allowed_to_proceed
    "endpoint_minute_seconds": 60.0,  # one minute of inactive_timeout, in real seconds
}

# Dedicated-endpoint hardware: id -> (dollars per hour, gpu type, memory GB, count)
HARDWARE = {
    "1x_nvidia_h100_80gb_sxm": (3.99, "h100-80gb", 80, 1),
    "2x_nvidia_h100_80gb_sxm": (7.98, "h100-80gb", 80, 2),
    "4x_nvidia_h100_80gb_sxm": (15.96, "h100-80gb", 80, 4),
    "8x_nvidia_h100_80gb_sxm": (31.92, "h100-80gb", 80, 8),
    "1x_nvidia_h200_141gb_sxm": (5.49, "h200-141gb", 141, 1),
    "2x_nvidia_h200_141gb_sxm": (10.98, "h200-141gb", 141, 2),
    "1x_nvidia_b200_180gb_sxm": (9.95, "b200-180gb", 180, 1),
}

# Training price in nano-dollars per token, by model size bracket (billions of
# parameters, upper bound) and (training type, method). $0.48/1M tokens = 480.
PRICES = [
    (16, {("Lora", "sft"): 480, ("Lora", "dpo"): 1200, ("Full", "sft"): 540, ("Full", "dpo"): 1350}),
    (69, {("Lora", "sft"): 1500, ("Lora", "dpo"): 3750, ("Full", "sft"): 1650, ("Full", "dpo"): 4125}),
    (10 ** 6, {("Lora", "sft"): 2900, ("Lora", "dpo"): 7250, ("Full", "sft"): 3200, ("Full", "dpo"): 8000}),
]

MAX_EPOCHS = 20
MAX_LR = 0.01
MAX_BATCH = 64
MAX_BATCH_DPO = 32
MIN_BATCH = 1
MAX_LORA_RANK = 64
MAX_EVALS = 100
SUFFIX_MAX = 40

# Top-level keys POST /fine-tunes accepts (v1 FinetuneRequest + create(); v2 FineTuningCreateParams).
CREATE_KEYS = {
    "training_file", "validation_file", "model", "n_epochs", "learning_rate", "lr_scheduler", "warmup_ratio",
    "max_grad_norm", "weight_decay", "n_checkpoints", "n_evals", "batch_size", "suffix", "wandb_key",
    "wandb_api_key", "wandb_base_url", "wandb_project_name", "wandb_name", "training_type", "training_method",
    "train_on_inputs", "from_checkpoint", "from_hf_model", "hf_model_revision", "hf_api_token",
    "hf_output_repo_name", "multimodal_params", "random_seed", "packing", "max_seq_length",
}
ESTIMATE_KEYS = {"training_file", "validation_file", "model", "n_epochs", "n_evals", "training_type",
                 "training_method"}
ENDPOINT_CREATE_KEYS = {"model", "hardware", "autoscaling", "display_name", "state", "inactive_timeout",
                        "disable_prompt_cache", "disable_speculative_decoding", "availability_zone"}
ENDPOINT_UPDATE_KEYS = {"autoscaling", "display_name", "inactive_timeout", "state"}

# ---- dataset formats (constants.py JSONL_REQUIRED_COLUMNS_MAP, in its order) ----
FORMATS = [
    ("general", ["text"]),
    ("conversation", ["messages"]),
    ("instruction", ["prompt", "completion"]),
    ("preference_openai", ["input", "preferred_output", "non_preferred_output"]),
]
EXTRA_COLUMNS = {"conversation": ["tools"]}  # v2 SDK JSONL_EXTRA_COLUMNS_MAP
ROLES = ["system", "user", "assistant", "tool"]  # v2 SDK; the v1 SDK had no "tool"
MAX_IMAGES = 10
MAX_B64_IMAGE = len("data:image/jpeg;base64,") + 4 * (10 * 1024 * 1024) // 3

_sim = None  # the ftsim module (ApiError lives there), set by bind()


def bind(module):
    global _sim
    _sim = module


def err(status, message, param=None, code=None, etype="invalid_request_error"):
    return _sim.ApiError(status, message, code, param, etype)


def iso(t):
    d = datetime.fromtimestamp(t, timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def new_id(prefix):
    return f"{prefix}-{uuid.uuid4()}"


class TogetherState:
    def __init__(self):
        self.files = {}
        self.jobs = {}
        self.endpoints = {}
        self.conf = dict(DEFAULT_CONF)

    def reset(self):
        self.files.clear()
        self.jobs.clear()
        self.endpoints.clear()


def configure(st, body):
    """/_sim/config: set the Together knobs present in body; return them all."""
    tg = st.together
    for k in DEFAULT_CONF:
        if k in body:
            tg.conf[k] = float(body[k])
    return dict(tg.conf)


# =====================================================================
# Data checks: the SDK's utils/files.py check_file, run when a file is processed
# =====================================================================

class Invalid(Exception):
    def __init__(self, message, line=None):
        super().__init__(message)
        self.message, self.line = message, line


def _check_content(content, role, n):
    """_check_message_content: a string, or an OpenAI-style multimodal list."""
    if isinstance(content, str):
        return False, 0
    if isinstance(content, list):
        images = 0
        for item in content:
            if not isinstance(item, dict):
                raise Invalid("The dataset is malformed, the `content` field must be a list of dicts.", n)
            if "type" not in item:
                raise Invalid("The dataset is malformed, the `content` field must be a list of dicts with a `type` field.", n)
            if item["type"] == "text":
                if not isinstance(item.get("text"), str):
                    raise Invalid("The dataset is malformed, the `text` field must be present in the `content` item field and be"
                                  f" a string. Got '{item.get('text')!r}' instead.", n)
            elif item["type"] == "image_url":
                if role != "user":
                    raise Invalid("The dataset is malformed, only user messages can contain images.", n)
                if not isinstance(item.get("image_url"), dict):
                    raise Invalid("The dataset is malformed, the `image_url` field must be present in the `content` field and "
                                  f"be a dictionary. Got {item.get('image_url')!r} instead.", n)
                url = item["image_url"].get("url")
                if not url or not isinstance(url, str):
                    raise Invalid("The dataset is malformed, the `url` field must be present in the `image_url` field and be "
                                  f"a string. Got {url!r} instead.", n)
                if not any(url.startswith(f"data:image/{f};base64,") for f in ("jpeg", "png", "webp")):
                    raise Invalid("The dataset is malformed, the `url` field must be either a JPEG, PNG or WEBP base64-encoded "
                                  "image in 'data:image/<format>;base64,<base64_encoded_image>' format. "
                                  f"Got '{url[:100]}...' instead.", n)
                if len(url) > MAX_B64_IMAGE:
                    raise Invalid("The dataset is malformed, the `url` field must contain base64-encoded image "
                                  f"that is less than 10MB, found ~{len(url) * 3 // 4} bytes.", n)
                images += 1
            else:
                raise Invalid("The dataset is malformed, the `type` field must be either 'text' or 'image_url'. "
                              f"Got {item['type']!r}.", n)
        if images > MAX_IMAGES:
            raise Invalid(f"The dataset is malformed, the `content` field must contain at most {MAX_IMAGES} images, "
                          f"found {images}.", n)
        return True, images
    raise Invalid(f"Invalid content type on line {n} of the input file. Expected string or multimodal list of dicts, "
                  f"found {type(content)}", n)


def _check_messages(messages, n, require_assistant=True):
    """validate_messages: types, weights, roles (no role twice in a row), content, one assistant."""
    if not isinstance(messages, list):
        raise Invalid(f"Invalid format on line {n} of the input file. "
                      f"The `messages` column must be a list. Found {type(messages)}", n)
    if not messages:
        raise Invalid(f"Invalid format on line {n} of the input file. The `messages` column must not be empty.", n)
    for m in messages:
        if not isinstance(m, dict):
            raise Invalid(f"Invalid format on line {n} of the input file. "
                          f"The `messages` column must be a list of dicts. Found {type(m)}", n)
        for column in ("role", "content"):
            if column not in m:
                raise Invalid(f"Missing required column `{column}` in message on line {n}.", n)
    previous, has_assistant, multimodal, total_images = None, False, None, 0
    for m in messages:
        weight = None
        if "weight" in m:
            weight = m["weight"]
            if not isinstance(weight, int):
                raise Invalid(f"Weight must be an integer on line {n}.", n)
            if weight not in (0, 1):
                raise Invalid(f"Weight must be either 0 or 1 on line {n}.", n)
        role = m["role"]
        if not isinstance(role, str):
            raise Invalid(f"Invalid role `{role}` in conversation on line {n}. "
                          f"Role must be a string. Found {type(role)}", n)
        if role not in ROLES:
            raise Invalid(f"Invalid role `{role}` in conversation on line {n}. Possible roles: {', '.join(ROLES)}", n)
        if previous is not None and role == previous:
            raise Invalid(f"Invalid role turns on line {n} of the input file. After the optional system message, "
                          "conversation roles must alternate between user/assistant/user/assistant.", n)
        previous = role
        has_assistant |= role == "assistant"
        is_mm, images = _check_content(m["content"], role, n)
        if images > 0 and weight is not None and weight != 0:
            raise Invalid("Messages with images cannot have non-zero weights.", n)
        if multimodal is None:
            multimodal = is_mm
        elif multimodal != is_mm:
            raise Invalid("Messages in the conversation must be either all in multimodal or all in text-only format.", n)
        total_images += images
    if total_images > MAX_IMAGES:
        raise Invalid(f"The dataset is malformed, the `messages` must contain at most {MAX_IMAGES} images. "
                      f"Found {total_images} images.", n)
    if require_assistant and not has_assistant:
        raise Invalid(f"Invalid format on line {n} of the input file. "
                      "At least one message with the assistant role must be present in the example.", n)


def _check_preference(obj, n):
    """validate_preference_openai."""
    if not isinstance(obj["input"], dict):
        raise Invalid("The dataset is malformed, the `input` field must be a dictionary.", n)
    if "messages" not in obj["input"]:
        raise Invalid("The dataset is malformed, the `input` dictionary must contain a `messages` field.", n)
    _check_messages(obj["input"]["messages"], n, require_assistant=False)
    if obj["input"]["messages"][-1]["role"] == "assistant":
        raise Invalid(f"The last message in the input conversation must not be from the assistant on line {n}.", n)
    for key in ("preferred_output", "non_preferred_output"):
        v = obj[key]
        if not isinstance(v, list):
            raise Invalid(f"The dataset is malformed, the `{key}` field must be a list on line {n}.", n)
        if len(v) != 1:
            raise Invalid(f"The dataset is malformed, the `{key}` list must contain exactly one message on line {n}.", n)
        if not isinstance(v[0], dict):
            raise Invalid(f"The dataset is malformed, the first element of `{key}` must be a dictionary on line {n}.", n)
        if "role" not in v[0]:
            raise Invalid(f"The dataset is malformed, the first element of `{key}` must have a 'role' field on line {n}.", n)
        if v[0]["role"] != "assistant":
            raise Invalid(f"The dataset is malformed, the first element of `{key}` must have the 'assistant' role on line {n}.", n)
        if "content" not in v[0]:
            raise Invalid(f"The dataset is malformed, the first element of `{key}` must have a 'content' field on line {n}.", n)
        _check_content(v[0]["content"], "assistant", n)


def check_file(path):
    """Return {format, examples, tokens}, or raise Invalid (first violation)."""
    if os.path.getsize(path) == 0:
        raise Invalid("File is empty")
    try:
        with open(path, encoding="utf-8") as f:
            for _ in f:
                pass
    except UnicodeDecodeError as e:
        raise Invalid(f"File is not UTF-8 encoded. Error raised: {e}.")
    dataset_format, examples, chars = None, 0, 0
    with open(path, encoding="utf-8") as f:  # universal newlines, like the SDK
        for idx, line in enumerate(f):
            n = idx + 1
            try:
                obj = json.loads(line)
            except ValueError:
                raise Invalid(f"Error parsing json payload. Unexpected format on line {n}.", n)
            if not isinstance(obj, dict):
                raise Invalid(f"Error parsing file. Invalid format on line {n} of the input file. Datasets must follow "
                              "text, conversational, or instruction format. For more information, see "
                              "https://docs.together.ai/docs/fine-tuning-data-preparation", n)
            current = None
            for name, required in FORMATS:
                if all(c in obj for c in required):
                    if current is None:
                        current = name
                    elif current != name:
                        raise Invalid("Found multiple dataset formats in the input file. "
                                      f"Got {current} and {name} on line {n}.", n)
                    allowed = required + EXTRA_COLUMNS.get(name, [])
                    for column in obj:
                        if column == "weight":  # per-example loss weight (Together docs, 2026)
                            if not is_num(obj["weight"]):
                                raise Invalid(f"The top-level `weight` must be a number on line {n}.", n)
                            continue
                        if column not in allowed:
                            raise Invalid(f'Found extra column "{column}" in the line {n}.', n)
            if current is None:
                raise Invalid(f"Error parsing file. Could not detect a format for the line {n} with the columns:\n"
                              f"dict_keys({list(obj.keys())!r})", n)
            if current == "preference_openai":
                _check_preference(obj, n)
            elif current == "conversation":
                if "tools" in obj and not isinstance(obj["tools"], list):
                    raise Invalid(f"The `tools` field must be a list on line {n}.", n)
                _check_messages(obj["messages"], n)
            else:
                for column in dict(FORMATS)[current]:
                    _check_content(obj[column], "assistant" if column == "completion" else "user", n)
            if dataset_format is None:
                dataset_format = current
            elif current != dataset_format:
                raise Invalid("All samples in the dataset must have the same dataset format. "
                              f"Got {dataset_format} for the first line and {current} for the line {n}.", n)
            examples += 1
            chars += len(line)
    if examples < 1:
        raise Invalid("Processing the file resulted in only 0 samples. Our minimum is 1 samples.")
    return {"format": dataset_format, "examples": examples, "tokens": max(1, chars // 4)}


# =====================================================================
# Files
# =====================================================================

def _check_in_background(st, f):
    """Check a file's data off the request path and without the state lock (a
    500 MB file takes a while): the result is applied when processing is due."""
    def run():
        try:
            result = ("ok", check_file(f["_path"]))
        except Invalid as e:
            result = ("invalid", (f"Line {e.line}: " if e.line else "") + e.message)
        except OSError as e:
            result = ("failed", str(e))
        with st.lock:
            f["_result"] = result
    threading.Thread(target=run, daemon=True).start()


def process(st, f, now=None):
    """Processing is a function of time: done file_processing_seconds after the
    upload, once the background check has finished."""
    if f["processing_status"] != "PENDING" or "_result" not in f:
        return
    now = time.time() if now is None else now
    if now - f["_t0"] < st.together.conf["file_processing_seconds"]:
        return
    f["Processed"] = True
    kind, r = f["_result"]
    if kind == "invalid":
        f["processing_status"] = "INVALID_FORMAT"
        f["validation_report"] = {"valid": False, "error_type": "INVALID_FORMAT", "error": r}
        return
    if kind == "failed":
        f["processing_status"] = "FAILED"
        f["validation_report"] = {"valid": False, "error_type": "FAILED", "error": r}
        return
    f["processing_status"] = "COMPLETED"
    f["LineCount"] = r["examples"]
    f["_format"], f["_examples"], f["_tokens"] = r["format"], r["examples"], r["tokens"]


def public_file(st, f):
    process(st, f)
    return {k: v for k, v in f.items() if not k.startswith("_")}


def h_upload(h, query, azure):
    st = h.server.state
    fields, files = h.multipart()
    try:
        name = fields.get("file_name")
        purpose = fields.get("purpose")
        ftype = fields.get("file_type") or "jsonl"
        if not name:
            raise err(400, "Missing required field: 'file_name'.", "file_name", "missing_required_parameter")
        if purpose is None:
            raise err(400, "Missing required field: 'purpose'.", "purpose", "missing_required_parameter")
        if purpose != "fine-tune":
            raise err(400, f"'purpose' must be 'fine-tune' here (got {purpose!r}); ftsim simulates fine-tuning files only.",
                      "purpose")
        if ftype not in ("jsonl", "parquet", "csv"):
            raise err(400, f"Invalid file_type {ftype!r}: must be one of jsonl, parquet, csv.", "file_type")
        if ftype == "csv":
            raise err(400, "CSV files are not supported for fine-tune. Only JSONL and Parquet files are supported.",
                      "file_type")
        if ftype != "jsonl":
            raise err(400, "ftsim simulates JSONL fine-tuning files only (file_type 'jsonl').", "file_type")
        if "file" not in files:
            raise err(400, "Missing file part 'file'.", "file", "missing_required_parameter")
        fp = files.pop("file")
        for p in files.values():
            os.unlink(p["path"])
        files = {}
        now = time.time()
        f = {"id": new_id("file"), "object": "file", "created_at": int(now), "filename": name,
             "bytes": fp["bytes"], "purpose": "fine-tune", "Processed": False, "FileType": ftype, "LineCount": 0,
             "processing_status": "PENDING",
             "_path": fp["path"], "_t0": now, "_format": None, "_examples": 0, "_tokens": 0}
        with st.lock:
            st.together.files[f["id"]] = f
        _check_in_background(st, f)
        with st.lock:
            return 200, public_file(st, f)
    except _sim.ApiError:
        for p in files.values():
            os.unlink(p["path"])
        raise


def get_file(st, fid):
    f = st.together.files.get(fid)
    if not f:
        raise err(404, f"File {fid} not found", "id", "file_not_found")
    return f


def h_list_files(h, query, azure):
    st = h.server.state
    with st.lock:
        return 200, {"object": "list", "data": [public_file(st, f) for f in st.together.files.values()]}


def h_get_file(h, query, azure, fid):
    st = h.server.state
    with st.lock:
        return 200, public_file(st, get_file(st, fid))


def h_delete_file(h, query, azure, fid):
    st = h.server.state
    h.body_reader().drain()
    with st.lock:
        f = get_file(st, fid)
        del st.together.files[fid]
    try:
        os.unlink(f["_path"])
    except OSError:
        pass
    return 200, {"id": fid, "object": "file", "deleted": True}


# =====================================================================
# Models, prices
# =====================================================================

def model_size_b(model):
    m = re.search(r"(\d+(?:\.\d+)?)[Bb](?![A-Za-z])", model.split("/")[-1])
    return float(m.group(1)) if m else 8.0


def supports_vision(model):
    return bool(re.search(r"VL|Vision", model))


def price_per_token(model, ttype, method):
    size = model_size_b(model)
    for upper, table in PRICES:
        if size <= upper:
            return table[(ttype, method)]
    return PRICES[-1][1][(ttype, method)]


def check_model(model, param="model"):
    if not isinstance(model, str) or not model:
        raise err(400, f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if "/" not in model or model.startswith("/") or model.endswith("/"):
        raise err(400, f"Model {model!r} is not available for fine-tuning on Together. Use a Together model name "
                       "such as 'meta-llama/Meta-Llama-3.1-8B-Instruct-Reference' or 'Qwen/Qwen3-8B' "
                       "(OpenAI model names are not Together models).", param, "model_not_available")


def limits_for(model):
    lora = {"max_batch_size": MAX_BATCH, "max_batch_size_dpo": MAX_BATCH_DPO, "min_batch_size": MIN_BATCH,
            "max_rank": MAX_LORA_RANK, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                          "up_proj", "down_proj"]}
    full = {"max_batch_size": MAX_BATCH, "max_batch_size_dpo": MAX_BATCH_DPO, "min_batch_size": MIN_BATCH}
    return {"max_num_epochs": MAX_EPOCHS, "max_learning_rate": MAX_LR, "min_learning_rate": 0.0,
            "full_training": full, "lora_training": lora, "supports_vision": supports_vision(model)}


def h_limits(h, query, azure):
    model = (query.get("model") or query.get("model_name") or [None])[0]
    if not model:
        raise err(400, "Missing required query parameter: 'model'.", "model", "missing_required_parameter")
    if "/" not in model:
        raise err(404, f"Model {model!r} is not available for fine-tuning.", "model", "model_not_available")
    return 200, limits_for(model)


# =====================================================================
# Jobs
# =====================================================================

def ready_file(st, fid, param):
    """A file a job may use: it exists, is processed and COMPLETED."""
    if not isinstance(fid, str) or not fid:
        raise err(400, f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    f = st.together.files.get(fid)
    if not f:
        raise err(400, f"{param}: file {fid} not found.", param, "file_not_found")
    process(st, f)
    if f["processing_status"] == "PENDING":
        raise err(400, f"{param}: file {fid} is not processed yet (processing_status PENDING). Poll GET /files/{fid} "
                       "until processing_status is COMPLETED.", param, "file_not_processed")
    if f["processing_status"] != "COMPLETED":
        rep = f.get("validation_report") or {}
        raise err(400, f"{param}: file {fid} has an invalid format: {rep.get('error')}", param, "invalid_file_format")
    return f


def check_training_type(tt):
    if tt is None:
        return {"type": "Lora", "lora_r": MAX_LORA_RANK, "lora_alpha": MAX_LORA_RANK * 2, "lora_dropout": 0.0,
                "lora_trainable_modules": "all-linear"}
    if not isinstance(tt, dict) or tt.get("type") not in ("Lora", "Full"):
        raise err(400, "training_type must be {\"type\": \"Lora\", ...} or {\"type\": \"Full\"}.", "training_type")
    if tt["type"] == "Full":
        if set(tt) - {"type"}:
            raise err(400, f"Unknown field(s) for Full training: {', '.join(sorted(set(tt) - {'type'}))}.",
                      "training_type")
        return {"type": "Full"}
    extra = set(tt) - {"type", "lora_r", "lora_alpha", "lora_dropout", "lora_trainable_modules"}
    if extra:
        raise err(400, f"Unknown field(s) in training_type: {', '.join(sorted(extra))}.", "training_type")
    r = tt.get("lora_r", MAX_LORA_RANK)
    if not is_int(r) or not 1 <= r <= MAX_LORA_RANK:
        raise err(400, f"training_type.lora_r must be an integer between 1 and {MAX_LORA_RANK}.", "training_type")
    alpha = tt.get("lora_alpha", r * 2)
    if not is_num(alpha) or alpha <= 0:
        raise err(400, "training_type.lora_alpha must be a positive number.", "training_type")
    dropout = tt.get("lora_dropout", 0.0)
    if not is_num(dropout) or not 0 <= dropout < 1:
        raise err(400, "LoRA dropout must be in [0, 1) range.", "training_type")
    modules = tt.get("lora_trainable_modules", "all-linear")
    if not isinstance(modules, str) or not modules:
        raise err(400, "training_type.lora_trainable_modules must be a string.", "training_type")
    return {"type": "Lora", "lora_r": r, "lora_alpha": int(alpha) if float(alpha).is_integer() else alpha,
            "lora_dropout": dropout, "lora_trainable_modules": modules}


def check_training_method(tm):
    if tm is None:
        return {"method": "sft", "train_on_inputs": "auto"}
    if not isinstance(tm, dict) or tm.get("method") not in ("sft", "dpo"):
        raise err(400, "training_method must be {\"method\": \"sft\", ...} or {\"method\": \"dpo\", ...}.",
                  "training_method")
    if tm["method"] == "sft":
        extra = set(tm) - {"method", "train_on_inputs"}
        if extra:
            raise err(400, f"Unknown field(s) for SFT training: {', '.join(sorted(extra))}.", "training_method")
        toi = tm.get("train_on_inputs", "auto")
        if toi != "auto" and not isinstance(toi, bool):
            raise err(400, "train_on_inputs must be true, false or \"auto\".", "training_method")
        return {"method": "sft", "train_on_inputs": toi}
    extra = set(tm) - {"method", "dpo_beta", "dpo_normalize_logratios_by_length", "dpo_reference_free", "rpo_alpha",
                       "simpo_gamma"}
    if extra:
        if "train_on_inputs" in extra:
            raise err(400, "train_on_inputs is only supported for SFT training", "training_method")
        raise err(400, f"Unknown field(s) for DPO training: {', '.join(sorted(extra))}.", "training_method")
    out = {"method": "dpo", "dpo_beta": tm.get("dpo_beta"),
           "dpo_normalize_logratios_by_length": tm.get("dpo_normalize_logratios_by_length", False),
           "dpo_reference_free": tm.get("dpo_reference_free", False),
           "rpo_alpha": tm.get("rpo_alpha"), "simpo_gamma": tm.get("simpo_gamma")}
    if out["dpo_beta"] is not None and (not is_num(out["dpo_beta"]) or out["dpo_beta"] <= 0):
        raise err(400, "dpo_beta must be a positive number.", "training_method")
    for k in ("rpo_alpha", "simpo_gamma"):
        if out[k] is not None and (not is_num(out[k]) or out[k] < 0):
            raise err(400, f"{k} should be non-negative (got {out[k]})", "training_method")
    for k in ("dpo_normalize_logratios_by_length", "dpo_reference_free"):
        if not isinstance(out[k], bool):
            raise err(400, f"{k} must be a boolean.", "training_method")
    return out


def check_lr_scheduler(s):
    if s is None:
        return {"lr_scheduler_type": "cosine", "lr_scheduler_args": {"min_lr_ratio": 0.0, "num_cycles": 0.5}}
    if not isinstance(s, dict) or s.get("lr_scheduler_type") not in ("linear", "cosine") or \
            set(s) - {"lr_scheduler_type", "lr_scheduler_args"}:
        raise err(400, "lr_scheduler must be {\"lr_scheduler_type\": \"linear\"|\"cosine\", \"lr_scheduler_args\": {...}}.",
                  "lr_scheduler")
    args = s.get("lr_scheduler_args") or {}
    allowed = {"min_lr_ratio"} | ({"num_cycles"} if s["lr_scheduler_type"] == "cosine" else set())
    if not isinstance(args, dict) or set(args) - allowed:
        raise err(400, f"lr_scheduler_args accepts {', '.join(sorted(allowed))} for {s['lr_scheduler_type']}.",
                  "lr_scheduler")
    mlr = args.get("min_lr_ratio", 0.0)
    if mlr is not None and (not is_num(mlr) or not 0 <= mlr <= 1):
        raise err(400, f"Min learning rate ratio should be between 0 and 1 (got {mlr})", "lr_scheduler")
    out = {"lr_scheduler_type": s["lr_scheduler_type"], "lr_scheduler_args": {"min_lr_ratio": mlr or 0.0}}
    if s["lr_scheduler_type"] == "cosine":
        nc = args.get("num_cycles", 0.5)
        if not is_num(nc) or nc <= 0:
            raise err(400, f"Number of cycles should be greater than 0 (got {nc})", "lr_scheduler")
        out["lr_scheduler_args"]["num_cycles"] = nc
    return out


def find_output(st, name):
    for j in st.together.jobs.values():
        advance(st, j)
        if j["model_output_name"] == name:
            return j
    return None


def resolve_checkpoint(st, ref):
    """from_checkpoint: {job id | output model name}[:step] of a completed job."""
    if not isinstance(ref, str) or not ref:
        raise err(400, "from_checkpoint must be a string.", "from_checkpoint")
    cands = [(ref, None)]
    head, _, tail = ref.rpartition(":")
    if head and tail.isdigit():
        cands.append((head, int(tail)))
    for base, step in cands:
        j = st.together.jobs.get(base) or find_output(st, base)
        if j:
            advance(st, j)
            if j["status"] != "completed":
                raise err(400, f"from_checkpoint: job {j['id']} is {j['status']}; only completed jobs have checkpoints.",
                          "from_checkpoint")
            if step is not None and step not in {c["step"] for c in j["_checkpoints"]}:
                raise err(400, f"from_checkpoint: job {j['id']} has no checkpoint at step {step}.", "from_checkpoint")
            return j
    raise err(400, f"from_checkpoint: no job or output model {ref!r} found.", "from_checkpoint")


def opt(b, key, check, message, default=None):
    """An optional field: absent or null gives the default; otherwise it must pass check."""
    v = b.get(key)
    if v is None:
        return default
    if not check(v):
        raise err(400, message, key)
    return v


def h_create(h, query, azure):
    st = h.server.state
    b = h.json_body()
    unknown = sorted(set(b) - CREATE_KEYS)
    if unknown:
        k = unknown[0]
        hint = {"metadata": " Together fine-tuning jobs have no metadata (and no idempotency key).",
                "method": " Use training_method {\"method\": \"sft\"|\"dpo\"} and training_type.",
                "hyperparameters": " Hyperparameters are top-level fields here (n_epochs, learning_rate, batch_size).",
                "integrations": " Use the wandb_* fields."}.get(k, "")
        raise err(400, f"Unrecognized request argument(s): {', '.join(unknown)}.{hint}", k, "unknown_parameter")
    with st.lock:
        model, src = b.get("model"), None
        if b.get("from_checkpoint") is not None:
            if model is not None and b.get("from_hf_model") is None:
                raise err(400, "You must specify either a model or a checkpoint to start a job from, not both",
                          "from_checkpoint")
            if b.get("from_hf_model") is not None:
                raise err(400, "You must specify either a Hugging Face Hub model or a previous checkpoint from "
                               "Together to start a job from, not both", "from_hf_model")
            src = resolve_checkpoint(st, b["from_checkpoint"])
            model = src["model"]
        check_model(model)
        if b.get("from_hf_model") is not None and not isinstance(b["from_hf_model"], str):
            raise err(400, "from_hf_model must be a string.", "from_hf_model")
        tf = ready_file(st, b.get("training_file"), "training_file")
        vfid = b.get("validation_file") or None  # the v1 SDK sends "" for none
        vf = ready_file(st, vfid, "validation_file") if vfid is not None else None
        n_epochs = opt(b, "n_epochs", lambda v: is_int(v) and 1 <= v <= MAX_EPOCHS,
                       f"n_epochs must be an integer between 1 and {MAX_EPOCHS}.", 1)
        lr = opt(b, "learning_rate", lambda v: is_num(v) and 0 < v <= MAX_LR,
                 f"learning_rate must be a number greater than 0 and at most {MAX_LR} (an absolute rate, not a "
                 "multiplier).", 0.00001)
        ttype = check_training_type(b.get("training_type"))
        tmethod = check_training_method(b.get("training_method"))
        if "train_on_inputs" in b:
            toi = b["train_on_inputs"]
            if tmethod["method"] != "sft":
                raise err(400, "train_on_inputs is only supported for SFT training", "train_on_inputs")
            if toi != "auto" and not isinstance(toi, bool):
                raise err(400, "train_on_inputs must be true, false or \"auto\".", "train_on_inputs")
            tmethod["train_on_inputs"] = toi
        max_batch = MAX_BATCH if tmethod["method"] == "sft" else MAX_BATCH_DPO
        bs = b.get("batch_size", "max")
        if bs is None:
            bs = "max"
        if bs != "max":
            if not is_int(bs) or bs < MIN_BATCH:
                raise err(400, f"batch_size must be \"max\" or an integer of at least {MIN_BATCH}.", "batch_size")
            if bs > max_batch:
                raise err(400, f"Requested batch size of {bs} is higher that the maximum allowed value of {max_batch}.",
                          "batch_size")
        batch = max_batch if bs == "max" else bs
        suffix = opt(b, "suffix", lambda v: isinstance(v, str) and 1 <= len(v) <= SUFFIX_MAX,
                     f"suffix must be a string of 1 to {SUFFIX_MAX} characters.")
        n_evals = opt(b, "n_evals", lambda v: is_int(v) and 0 <= v <= MAX_EVALS,
                      f"n_evals must be an integer between 0 and {MAX_EVALS}.", 0)
        if n_evals and vf is None:
            raise err(400, "You have specified a number of evaluation loops but no validation file.", "n_evals")
        n_ckpt = opt(b, "n_checkpoints", lambda v: is_int(v) and v >= 1, "n_checkpoints must be a positive integer.", 1)
        warmup = opt(b, "warmup_ratio", lambda v: is_num(v) and 0 <= v <= 1,
                     "Warmup ratio should be between 0 and 1.", 0.0)
        mgn = opt(b, "max_grad_norm", lambda v: is_num(v) and v >= 0, "Max gradient norm should be non-negative.", 1.0)
        wd = opt(b, "weight_decay", lambda v: is_num(v) and v >= 0, "Weight decay should be non-negative.", 0.0)
        sched = check_lr_scheduler(b.get("lr_scheduler"))
        for k in ("wandb_key", "wandb_api_key", "wandb_base_url", "wandb_project_name", "wandb_name", "hf_api_token",
                  "hf_output_repo_name", "hf_model_revision"):
            opt(b, k, lambda v: isinstance(v, str), f"{k} must be a string.")
        packing = opt(b, "packing", lambda v: isinstance(v, bool), "packing must be a boolean.", True)
        msl = opt(b, "max_seq_length", lambda v: is_int(v) and v > 0, "max_seq_length must be a positive integer.")
        seed = opt(b, "random_seed", is_int, "random_seed must be an integer.", 42)
        mm = b.get("multimodal_params")
        if mm is not None:
            if not isinstance(mm, dict) or set(mm) - {"train_vision"} or not isinstance(mm.get("train_vision", False), bool):
                raise err(400, "multimodal_params must be {\"train_vision\": bool}.", "multimodal_params")
            if mm.get("train_vision") and not supports_vision(model):
                raise err(400, f"Vision encoder training is not supported for the non-multimodal model `{model}`",
                          "multimodal_params")
        want = "preference_openai" if tmethod["method"] == "dpo" else None
        for f, param in ((tf, "training_file"), (vf, "validation_file")):
            if f is None:
                continue
            if want and f["_format"] != want:
                raise err(400, f"{param}: DPO training needs a file in the preference format (input, preferred_output, "
                               f"non_preferred_output); file {f['id']} is in the {f['_format']} format.", param,
                          "invalid_file_format")
            if not want and f["_format"] == "preference_openai":
                raise err(400, f"{param}: file {f['id']} is in the preference format, which needs training_method "
                               "{\"method\": \"dpo\"}; SFT needs the conversation, instruction or general format.",
                          param, "invalid_file_format")
        if vf is not None and vf["_format"] != tf["_format"]:
            raise err(400, f"validation_file is in the {vf['_format']} format but training_file is in the "
                           f"{tf['_format']} format.", "validation_file", "invalid_file_format")

        now = time.time()
        job = {
            "id": new_id("ft"), "status": "pending", "model": model, "model_output_name": None,
            "training_file": tf["id"], "validation_file": vf["id"] if vf else None, "suffix": suffix,
            "n_epochs": n_epochs, "n_checkpoints": n_ckpt, "n_evals": n_evals, "batch_size": batch,
            "learning_rate": lr, "lr_scheduler": sched, "warmup_ratio": warmup, "max_grad_norm": mgn,
            "weight_decay": wd, "training_type": ttype, "training_method": tmethod,
            "train_on_inputs": tmethod.get("train_on_inputs"), "from_checkpoint": b.get("from_checkpoint"),
            "from_hf_model": b.get("from_hf_model"), "hf_model_revision": b.get("hf_model_revision"),
            "hf_output_repo_name": b.get("hf_output_repo_name"), "multimodal_params": mm,
            "packing": packing, "max_seq_length": msl, "random_seed": seed,
            "wandb_base_url": b.get("wandb_base_url"), "wandb_project_name": b.get("wandb_project_name"),
            "wandb_name": b.get("wandb_name"), "wandb_url": None,
            "created_at": iso(now), "updated_at": iso(now), "started_at": None, "user_id": USER,
            "token_count": None, "param_count": None, "total_price": None, "queue_depth": 0,
            "epochs_completed": 0, "steps_completed": 0, "total_steps": None, "evals_completed": 0,
            "progress": {"estimate_available": False, "seconds_remaining": 0}, "events": [],
            "_t0": now, "_seconds": float(st.args.job_seconds), "_plan": [], "_next": 0, "_checkpoints": [],
            "_cancel_at": None, "_tokens": 0,
        }
        plan_job(job, tf, vf)
        event(job, "JOB_PENDING", "Fine tune request created", now)
        st.together.jobs[job["id"]] = job
        return 200, public_job(st, job)


def plan_job(job, tf, vf):
    """The job's timeline: (fraction of job_seconds, action, args), applied as time passes."""
    E = job["n_epochs"]
    spe = max(1, math.ceil(tf["_examples"] / job["batch_size"]))
    total = E * spe
    job["_spe"], job["_total_steps"] = spe, total
    k = min(job["n_checkpoints"], E)
    ckpt_epochs = sorted({round(E * i / k) for i in range(1, k)} - {0, E})
    p = [(0.1, "status", "queued"), (0.2, "start", None)]
    for e in range(1, E + 1):
        p.append((min(0.8, 0.2 + 0.6 * e / E), "epoch", e))
        if e in ckpt_epochs:
            p.append((min(0.8, 0.2 + 0.6 * e / E), "checkpoint", e * spe))
    if vf is not None and job["n_evals"]:
        for i in range(1, job["n_evals"] + 1):
            p.append((min(0.8, 0.2 + 0.6 * i / job["n_evals"]), "eval", max(1, round(total * i / job["n_evals"]))))
    p.sort(key=lambda x: x[0])  # stable: an epoch's checkpoint follows it
    p += [(0.8, "compress", None), (0.9, "upload", None), (1.0, "complete", None)]
    job["_plan"] = p


def event(job, etype, message, at, level="info", **extra):
    ev = {"object": "fine-tune-event", "created_at": iso(at), "level": level, "message": message, "type": etype,
          "param_count": None, "token_count": None, "step": None, "total_steps": None, "checkpoint_path": None,
          "model_path": None, "wandb_url": None, "hash": uuid.uuid4().hex}
    ev.update(extra)
    job["events"].append(ev)
    job["updated_at"] = iso(at)


def output_name(job):
    base = job["model"].split("/")[-1]
    return f"{USER}/{base}:{job['suffix'] or 'model'}:{job['id']}"


def ckpt_path(job, step):
    return f"s3://together-ftsim/{USER}/{job['id']}/checkpoints/step-{step}"


def add_checkpoint(job, step, ctype, at, kind):
    job["_checkpoints"].append({"step": step, "checkpoint_type": ctype, "created_at": iso(at),
                                "path": ckpt_path(job, step) + ("" if ctype == "Intermediate" else "-" + kind),
                                "checkpoint": kind})


def price_of(job, tokens):
    return int(tokens * price_per_token(job["model"], job["training_type"]["type"], job["training_method"]["method"]))


def advance(st, job, now=None):
    """Apply the timeline up to now (the job's state is a function of time)."""
    now = time.time() if now is None else now
    if job["status"] in ("completed", "error", "user_error", "cancelled"):
        return
    if job["status"] == "cancel_requested":
        if now >= job["_cancel_at"]:
            at = job["_cancel_at"]
            ran = 0.0
            if job["started_at"] is not None:
                ran = min(1.0, max(0.0, (at - job["_t0"]) / job["_seconds"] - 0.2) / 0.6)
            job["status"] = "cancelled"
            job["total_price"] = price_of(job, int((job["token_count"] or 0) * ran))
            job["progress"] = {"estimate_available": False, "seconds_remaining": 0}
            event(job, "JOB_STOPPED", "Job was cancelled", at)
        return
    T = job["_seconds"]
    while job["_next"] < len(job["_plan"]):
        frac, action, arg = job["_plan"][job["_next"]]
        at = job["_t0"] + frac * T
        if at > now:
            break
        job["_next"] += 1
        if not apply(st, job, action, arg, at):
            return
    if job["status"] in ("pending", "queued", "running", "compressing", "uploading"):
        job["progress"] = {"estimate_available": job["status"] != "pending",
                           "seconds_remaining": max(0, int(math.ceil(job["_t0"] + T - now)))}


def apply(st, job, action, arg, at):
    """One timeline step; False when the job ended."""
    if action == "status":
        job["status"] = arg
        job["updated_at"] = iso(at)
    elif action == "start":
        job["status"] = "running"
        job["started_at"] = iso(at)
        event(job, "JOB_START", f"Job started at {iso(at)}", at)
        tf = st.together.files.get(job["training_file"])
        vf = st.together.files.get(job["validation_file"]) if job["validation_file"] else None
        if tf is None or (job["validation_file"] and vf is None):
            gone = job["training_file"] if tf is None else job["validation_file"]
            return fail(job, "user_error", f"Could not download the dataset: file {gone} was deleted.", at)
        if tf["_examples"] < 1:
            return fail(job, "user_error", f"Training file {tf['id']} has no examples.", at)
        event(job, "MODEL_DOWNLOAD_COMPLETE", "Model downloaded", at)
        event(job, "TRAINING_DATA_DOWNLOAD_COMPLETE", "Training data downloaded", at)
        tokens = tf["_tokens"] * job["n_epochs"] + (vf["_tokens"] * job["n_evals"] if vf else 0)
        job["token_count"] = tokens
        job["param_count"] = int(model_size_b(job["model"]) * 1e9)
        job["total_steps"] = job["_total_steps"]
        event(job, "TRAINING_START", "Training started (simulated by ftsim: no training happens)", at,
              token_count=tokens, param_count=job["param_count"], total_steps=job["_total_steps"])
    elif action == "epoch":
        job["epochs_completed"] = arg
        job["steps_completed"] = arg * job["_spe"]
        event(job, "EPOCH_COMPLETE", f"Epoch completed, at step {arg * job['_spe']}", at,
              step=arg * job["_spe"], total_steps=job["_total_steps"])
    elif action == "checkpoint":
        kind = "adapter" if job["training_type"]["type"] == "Lora" else "model"
        add_checkpoint(job, arg, "Intermediate", at, kind)
        event(job, "CHECKPOINT_SAVE", f"New checkpoint saved at step {arg}", at, step=arg,
              total_steps=job["_total_steps"], checkpoint_path=ckpt_path(job, arg))
    elif action == "eval":
        job["evals_completed"] += 1
        loss = round(1.5 / (1 + arg / 4), 4)
        event(job, "EVAL_COMPLETE", f"Evaluation loss: {loss}, at step {arg}", at, step=arg,
              total_steps=job["_total_steps"])
    elif action == "compress":
        event(job, "TRAINING_COMPLETE", "Training completed", at)
        job["status"] = "compressing"
        event(job, "COMPRESSING_MODEL", "Compressing output model", at)
    elif action == "upload":
        event(job, "MODEL_COMPRESSION_COMPLETE", "Model compression complete", at)
        job["status"] = "uploading"
        event(job, "MODEL_UPLOADING", "Uploading output model", at)
    elif action == "complete":
        job["model_output_name"] = output_name(job)
        steps = job["_total_steps"]
        event(job, "MODEL_UPLOAD_COMPLETE", "Model upload complete", at,
              model_path=f"s3://together-ftsim/{USER}/{job['id']}/model")
        if job["training_type"]["type"] == "Lora":
            add_checkpoint(job, steps, "Final Merged", at, "model")
            add_checkpoint(job, steps, "Final Adapter", at, "adapter")
        else:
            add_checkpoint(job, steps, "Final", at, "model")
        job["total_price"] = price_of(job, job["token_count"] or 0)
        job["status"] = "completed"
        job["progress"] = {"estimate_available": False, "seconds_remaining": 0}
        event(job, "JOB_COMPLETE", f"Job finished at {iso(at)}", at)
        return False
    return True


def fail(job, status, message, at):
    job["status"] = status
    job["total_price"] = 0
    job["progress"] = {"estimate_available": False, "seconds_remaining": 0}
    event(job, "JOB_USER_ERROR" if status == "user_error" else "JOB_ERROR", message, at, level="error")
    return False


def public_job(st, job):
    advance(st, job)
    out = {k: v for k, v in job.items() if not k.startswith("_")}
    out["events"] = [dict(e) for e in job["events"]]
    return out


LIST_KEYS = ["id", "status", "model", "model_output_name", "suffix", "training_file", "validation_file", "created_at",
             "updated_at", "batch_size", "learning_rate", "lr_scheduler", "max_grad_norm", "n_checkpoints", "n_epochs",
             "n_evals", "token_count", "total_price", "training_method", "training_type", "user_id", "wandb_name",
             "wandb_project_name", "warmup_ratio", "weight_decay", "from_checkpoint", "from_hf_model",
             "hf_model_revision"]


def get_job(st, jid):
    j = st.together.jobs.get(jid)
    if not j:
        raise err(404, f"Fine-tune job {jid} not found", "id", "fine_tune_not_found")
    return j


def h_list_jobs(h, query, azure):
    st = h.server.state
    with st.lock:
        data = []
        for j in st.together.jobs.values():
            advance(st, j)
            data.append({k: j[k] for k in LIST_KEYS})
        return 200, {"data": data}


def h_retrieve(h, query, azure, jid):
    st = h.server.state
    with st.lock:
        return 200, public_job(st, get_job(st, jid))


def h_cancel(h, query, azure, jid):
    st = h.server.state
    h.body_reader().drain()
    with st.lock:
        j = get_job(st, jid)
        advance(st, j)
        if j["status"] in ("completed", "error", "user_error", "cancelled"):
            raise err(400, f"Fine-tune job {jid} is already {j['status']} and cannot be cancelled.", "id",
                      "invalid_job_state")
        if j["status"] != "cancel_requested":
            now = time.time()
            j["status"] = "cancel_requested"
            j["_cancel_at"] = now + st.together.conf["cancel_seconds"]
            event(j, "CANCEL_REQUESTED", "Job cancellation requested", now)
        return 200, public_job(st, j)


def h_events(h, query, azure, jid):
    st = h.server.state
    with st.lock:
        j = get_job(st, jid)
        advance(st, j)
        return 200, {"object": "list", "data": [dict(e) for e in j["events"]]}


def h_checkpoints(h, query, azure, jid):
    st = h.server.state
    with st.lock:
        j = get_job(st, jid)
        advance(st, j)
        return 200, {"data": [dict(c) for c in j["_checkpoints"]]}


def h_estimate(h, query, azure):
    st = h.server.state
    b = h.json_body()
    unknown = sorted(set(b) - ESTIMATE_KEYS)
    if unknown:
        raise err(400, f"Unrecognized request argument(s): {', '.join(unknown)}.", unknown[0], "unknown_parameter")
    with st.lock:
        check_model(b.get("model"))
        tf = ready_file(st, b.get("training_file"), "training_file")
        vfid = b.get("validation_file") or None
        vf = ready_file(st, vfid, "validation_file") if vfid is not None else None
        n_epochs = opt(b, "n_epochs", lambda v: is_int(v) and 1 <= v <= MAX_EPOCHS,
                       f"n_epochs must be an integer between 1 and {MAX_EPOCHS}.", 1)
        n_evals = opt(b, "n_evals", lambda v: is_int(v) and 0 <= v <= MAX_EVALS,
                      f"n_evals must be an integer between 0 and {MAX_EVALS}.", 0)
        ttype = check_training_type(b.get("training_type"))
        tmethod = check_training_method(b.get("training_method"))
        train = tf["_tokens"] * n_epochs
        evals = vf["_tokens"] * n_evals if vf else 0
        nano = (train + evals) * price_per_token(b["model"], ttype["type"], tmethod["method"])
        dollars = round(nano / NANO, 6)
        limit = float(st.together.conf["user_limit"])
        return 200, {"estimated_total_price": dollars, "user_limit": limit, "estimated_train_token_count": train,
                     "estimated_eval_token_count": evals, "allowed_to_proceed": dollars <= limit}


# =====================================================================
# Dedicated endpoints and the chat check
# =====================================================================

def advance_endpoint(st, ep, now=None):
    now = time.time() if now is None else now
    while ep["_plan"] and ep["_plan"][0][0] <= now:
        at, state = ep["_plan"].pop(0)
        ep["state"] = state
        if state == "STARTED":
            ep["_active"] = at
    if ep["state"] == "STARTED" and not ep["_plan"] and ep["inactive_timeout"]:
        stop_at = ep["_active"] + ep["inactive_timeout"] * st.together.conf["endpoint_minute_seconds"]
        if now >= stop_at:  # inactive_timeout stops an idle endpoint
            ep["_plan"] = [(stop_at, "STOPPING"), (stop_at + st.together.conf["endpoint_stop_seconds"], "STOPPED")]
            advance_endpoint(st, ep, now)


def public_endpoint(st, ep):
    advance_endpoint(st, ep)
    return {k: v for k, v in ep.items() if not k.startswith("_")}


def check_autoscaling(a):
    if not isinstance(a, dict) or set(a) != {"min_replicas", "max_replicas"} or \
            not is_int(a["min_replicas"]) or not is_int(a["max_replicas"]):
        raise err(400, "autoscaling must be {\"min_replicas\": int, \"max_replicas\": int}.", "autoscaling")
    if a["min_replicas"] < 1 or a["max_replicas"] < a["min_replicas"]:
        raise err(400, "autoscaling: need 1 <= min_replicas <= max_replicas.", "autoscaling")
    return {"min_replicas": a["min_replicas"], "max_replicas": a["max_replicas"]}


def check_inactive_timeout(v):
    if v is not None and (not is_int(v) or v < 0):
        raise err(400, "inactive_timeout must be a number of minutes (0 or null: never).", "inactive_timeout")
    return v


def h_deploy(h, query, azure):
    st = h.server.state
    b = h.json_body()
    unknown = sorted(set(b) - ENDPOINT_CREATE_KEYS)
    if unknown:
        raise err(400, f"Unrecognized request argument(s): {', '.join(unknown)}.", unknown[0], "unknown_parameter")
    model = b.get("model")
    if not isinstance(model, str) or not model:
        raise err(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
    hw = b.get("hardware")
    if not isinstance(hw, str) or not hw:
        raise err(400, "Missing required parameter: 'hardware'.", "hardware", "missing_required_parameter")
    if hw not in HARDWARE:
        raise err(400, f"Unknown hardware {hw!r}; available: {', '.join(sorted(HARDWARE))}.", "hardware",
                  "invalid_hardware")
    if "autoscaling" not in b:
        raise err(400, "Missing required parameter: 'autoscaling'.", "autoscaling", "missing_required_parameter")
    auto = check_autoscaling(b["autoscaling"])
    state = b.get("state", "STARTED")
    if state not in ("STARTED", "STOPPED"):
        raise err(400, "state must be STARTED or STOPPED.", "state")
    timeout = check_inactive_timeout(b.get("inactive_timeout"))
    dn = b.get("display_name")
    if dn is not None and (not isinstance(dn, str) or not dn):
        raise err(400, "display_name must be a non-empty string.", "display_name")
    for k in ("disable_prompt_cache", "disable_speculative_decoding"):
        if k in b and not isinstance(b[k], bool):
            raise err(400, f"{k} must be a boolean.", k)
    if "availability_zone" in b and not isinstance(b["availability_zone"], str):
        raise err(400, "availability_zone must be a string.", "availability_zone")
    with st.lock:
        job = find_output(st, model)
        if job is None:
            for j in st.together.jobs.values():
                if model == output_name(j):
                    job = j
                    break
        if job is None:
            raise err(404, f"Model {model!r} not found. Deploy the model_output_name of a completed fine-tuning job.",
                      "model", "model_not_found")
        if job["status"] != "completed":
            raise err(400, f"Model {model!r} is not ready: its fine-tuning job {job['id']} is {job['status']}.",
                      "model", "model_not_ready")
        now = time.time()
        stem = job["model"].split("/")[-1] + (f"-{job['suffix']}" if job["suffix"] else "")
        name = f"{USER}/{stem}-{uuid.uuid4().hex[:8]}"
        s = st.together.conf["endpoint_start_seconds"]
        ep = {"object": "endpoint", "id": new_id("endpoint"), "name": name, "display_name": dn or name,
              "model": job["model_output_name"], "hardware": hw, "type": "dedicated", "owner": USER,
              "state": "PENDING", "autoscaling": auto, "inactive_timeout": timeout, "created_at": iso(now),
              "_plan": [(now + s / 3, "STARTING"), (now + s, "STARTED")], "_active": now}
        if "availability_zone" in b:
            ep["availability_zone"] = b["availability_zone"]
        if state == "STOPPED":
            ep["state"], ep["_plan"] = "STOPPED", []
        st.together.endpoints[ep["id"]] = ep
        return 200, public_endpoint(st, ep)


def get_endpoint(st, eid):
    ep = st.together.endpoints.get(eid)
    if not ep:
        raise err(404, f"Endpoint {eid} not found", "id", "endpoint_not_found")
    return ep


def h_list_endpoints(h, query, azure):
    st = h.server.state
    etype = (query.get("type") or [None])[0]
    with st.lock:
        eps = [public_endpoint(st, e) for e in st.together.endpoints.values()]
    if etype not in (None, "dedicated"):
        eps = []
    return 200, {"object": "list", "data": eps}


def h_get_endpoint(h, query, azure, eid):
    st = h.server.state
    with st.lock:
        return 200, public_endpoint(st, get_endpoint(st, eid))


def h_update_endpoint(h, query, azure, eid):
    st = h.server.state
    b = h.json_body()
    unknown = sorted(set(b) - ENDPOINT_UPDATE_KEYS)
    if unknown:
        raise err(400, f"Unrecognized request argument(s): {', '.join(unknown)}.", unknown[0], "unknown_parameter")
    with st.lock:
        ep = get_endpoint(st, eid)
        advance_endpoint(st, ep)
        if "autoscaling" in b:
            auto = check_autoscaling(b["autoscaling"])
        if "inactive_timeout" in b:
            check_inactive_timeout(b["inactive_timeout"])
        if "display_name" in b and (not isinstance(b["display_name"], str) or not b["display_name"]):
            raise err(400, "display_name must be a non-empty string.", "display_name")
        if "state" in b and b["state"] not in ("STARTED", "STOPPED"):
            raise err(400, "state must be STARTED or STOPPED.", "state")
        if "autoscaling" in b:
            ep["autoscaling"] = auto
        if "inactive_timeout" in b:
            ep["inactive_timeout"] = b["inactive_timeout"]
        if "display_name" in b:
            ep["display_name"] = b["display_name"]
        now = time.time()
        conf = st.together.conf
        if b.get("state") == "STOPPED" and ep["state"] not in ("STOPPING", "STOPPED"):
            ep["_plan"] = [(now, "STOPPING"), (now + conf["endpoint_stop_seconds"], "STOPPED")]
        elif b.get("state") == "STARTED" and ep["state"] in ("STOPPING", "STOPPED", "ERROR", "FAILED"):
            ep["_plan"] = [(now, "STARTING"), (now + conf["endpoint_start_seconds"], "STARTED")]
        elif "state" in b or "inactive_timeout" in b:
            ep["_active"] = now
        return 200, public_endpoint(st, ep)


def h_delete_endpoint(h, query, azure, eid):
    st = h.server.state
    h.body_reader().drain()
    with st.lock:
        get_endpoint(st, eid)
        del st.together.endpoints[eid]
    return 204, None


def h_hardware(h, query, azure):
    st = h.server.state
    model = (query.get("model") or [None])[0]
    if model is not None:
        with st.lock:
            known = find_output(st, model) is not None
        if not known and "/" not in model:
            raise err(404, f"Model {model!r} not found.", "model", "model_not_found")
    data = []
    for hid, (per_hour, gpu, mem, count) in sorted(HARDWARE.items()):
        item = {"object": "hardware", "id": hid, "pricing": {"cents_per_minute": round(per_hour * 100 / 60, 4)},
                "specs": {"gpu_type": gpu, "gpu_link": "sxm", "gpu_memory": mem, "gpu_count": count},
                "updated_at": iso(time.time())}
        if model is not None:
            item["availability"] = {"status": "available"}
        data.append(item)
    return 200, {"object": "list", "data": data}


def h_chat(h, query, azure):
    st = h.server.state
    b = h.json_body()
    model = b.get("model")
    if not isinstance(model, str) or not model:
        raise err(400, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
    msgs = b.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise err(400, "messages must be a non-empty list.", "messages")
    with st.lock:
        ep = None
        for e in st.together.endpoints.values():
            if e["name"] == model:
                ep = e
                break
        if ep is None:
            raise err(404, f"Unable to access non-serverless model {model}. Please visit "
                           f"https://api.together.ai/models/{model} to create and start a new dedicated endpoint for "
                           "the model.", "model", "model_not_available")
        advance_endpoint(st, ep)
        if ep["state"] != "STARTED":
            raise err(400, f"The dedicated endpoint {model} is not running (state {ep['state']}); start it with "
                           f"PATCH /endpoints/{ep['id']} {{\"state\": \"STARTED\"}}.", "model",
                      "dedicated_endpoint_not_running")
        ep["_active"] = time.time()
    return 200, {"id": uuid.uuid4().hex[:18], "object": "chat.completion", "created": int(time.time()),
                 "model": model, "prompt": [],
                 "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                              "message": {"role": "assistant", "content": "Simulated answer from ftsim (no model ran).",
                                          "tool_calls": []}}],
                 "usage": {"prompt_tokens": 8, "completion_tokens": 8, "total_tokens": 16}}


# =====================================================================
# Routing and admin
# =====================================================================

ROUTES = [
    ("POST", r"/files/upload", "upload", h_upload),
    ("GET", r"/files", "list_files", h_list_files),
    ("GET", r"/files/(?P<fid>[^/]+)", "retrieve_file", h_get_file),
    ("DELETE", r"/files/(?P<fid>[^/]+)", "delete_file", h_delete_file),
    ("POST", r"/fine-tunes/estimate-price", "estimate", h_estimate),
    ("GET", r"/fine-tunes/models/limits", "limits", h_limits),
    ("POST", r"/fine-tunes", "create", h_create),
    ("GET", r"/fine-tunes", "list_jobs", h_list_jobs),
    ("GET", r"/fine-tunes/(?P<jid>[^/]+)", "retrieve", h_retrieve),
    ("POST", r"/fine-tunes/(?P<jid>[^/]+)/cancel", "cancel", h_cancel),
    ("GET", r"/fine-tunes/(?P<jid>[^/]+)/events", "events", h_events),
    ("GET", r"/fine-tunes/(?P<jid>[^/]+)/checkpoints", "checkpoints", h_checkpoints),
    ("POST", r"/endpoints", "deploy", h_deploy),
    ("GET", r"/endpoints", "list_endpoints", h_list_endpoints),
    ("GET", r"/endpoints/(?P<eid>[^/]+)", "endpoint", h_get_endpoint),
    ("PATCH", r"/endpoints/(?P<eid>[^/]+)", "endpoint_update", h_update_endpoint),
    ("DELETE", r"/endpoints/(?P<eid>[^/]+)", "endpoint_delete", h_delete_endpoint),
    ("GET", r"/hardware", "hardware", h_hardware),
    ("POST", r"/chat/completions", "chat", h_chat),
]


def match(h, method, path):
    """(fault endpoint name, handler(query=, azure=, **args), args) for a path under PREFIX."""
    from urllib.parse import unquote
    for m, pattern, name, fn in ROUTES:
        mm = re.fullmatch(pattern, path)
        if m == method and mm:
            return name, partial(fn, h), {k: unquote(v) for k, v in mm.groupdict().items()}
    return None, None, {}


def admin_state(st):
    """The "together" part of /_sim/state (call with st.lock held)."""
    return {"files": [dict(public_file(st, f), path=f["_path"]) for f in st.together.files.values()],
            "jobs": [public_job(st, j) for j in st.together.jobs.values()],
            "endpoints": [public_endpoint(st, e) for e in st.together.endpoints.values()],
            "config": dict(st.together.conf)}
