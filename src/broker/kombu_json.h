// kombu's typed JSON values, read as kombu reads them.
//
// From kombu 5.3 on, kombu's JSON serializer (kombu/utils/json.py) writes
// some Python objects as {"__type__": NAME, "__value__": VALUE}, and its
// loader's object_hook turns every such object back into the Python object,
// innermost first. Codabench's site on Celery 5.6 sends the submission's
// secret (a uuid.UUID) that way. The worker has no Python objects, so each
// typed value becomes the plain JSON the Python worker ends up using:
//
//   uuid      {"hex": H} (5.3.1+), {"hex": H, "version": N} (5.3.0), or the
//             bare hex text  ->  its dashed text, as str(uuid.UUID) prints it
//   datetime, date, time  ISO text  ->  that text, unchanged
//   decimal   its text (str(Decimal))  ->  a JSON number (finite values only)
//   bytes     its UTF-8 text  ->  that text
//   base64    base64 of bytes  ->  the bytes, when they are UTF-8 text
//
// No I/O, no state; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace cw {

// Decodes every typed value inside `value` in place. A typed value that
// cannot be decoded (an unknown type, a malformed UUID, a NaN decimal) is left
// as it was, the others are still decoded, and the first problem comes back
// as InvalidInput naming where it is (`where`: the name of `value` itself,
// e.g. "args"), never the value: run_args hold the submission's secret.
Status DecodeKombuTypes(nlohmann::json& value, const std::string& where);

// The dashed, lower-case text of a UUID given as kombu's uuid __value__
// (see above), as uuid.UUID(**value) then str() make it; nullopt when
// Python would refuse it.
std::optional<std::string> KombuUuidText(const nlohmann::json& value);

// Standard or URL-safe base64, padding optional, white space skipped;
// nullopt on any other character.
std::optional<std::string> DecodeBase64(std::string_view in);

}  // namespace cw
