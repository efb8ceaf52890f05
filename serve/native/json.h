// A small JSON reader for the two documents this backend reads: the model configuration and the backend
// configuration that Triton hands over as JSON. Read-only; numbers keep their exact int64 value.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tritonstack {

class Json {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  // Parse `text`; on failure return false and say where in `error`.
  static bool Parse(const std::string& text, Json* out, std::string* error);

  Kind kind() const { return kind_; }
  const std::vector<Json>& items() const { return items_; }
  const std::vector<std::pair<std::string, Json>>& members() const { return members_; }

  // The member `key` of an object, or nullptr.
  const Json* Get(const std::string& key) const;
  // A string member (or "" / `fallback`), and an integer member that may be a number or a numeric string.
  std::string String(const std::string& key, const std::string& fallback = "") const;
  bool Int(const std::string& key, int64_t* out) const;
  bool AsInt(int64_t* out) const;
  // A number as a double (false for anything else).
  bool AsDouble(double* out) const;
  const std::string& text() const { return text_; }

 private:
  friend class JsonParser;
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  bool integral_ = false;
  int64_t int_ = 0;
  double number_ = 0;
  std::string text_;
  std::vector<Json> items_;
  std::vector<std::pair<std::string, Json>> members_;
};

}  // namespace tritonstack
