// Recursive-descent JSON reader (RFC 8259 subset: no \u surrogate pairs beyond the BMP needed here).
#include "json.h"

#include <cerrno>
#include <cstdlib>

namespace tritonstack {

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : s_(text) {}

  bool Document(Json* out, std::string* error) {
    if (!Value(out, 0) || (Skip(), pos_ != s_.size())) {
      *error = "invalid JSON near offset " + std::to_string(pos_);
      return false;
    }
    return true;
  }

 private:
  static constexpr int kMaxDepth = 64;

  void Skip() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) {
      ++pos_;
    }
  }

  bool Literal(const char* word) {
    std::string w(word);
    if (s_.compare(pos_, w.size(), w) != 0) return false;
    pos_ += w.size();
    return true;
  }

  bool Value(Json* out, int depth) {
    if (depth > kMaxDepth) return false;
    Skip();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '{') return Object(out, depth);
    if (c == '[') return Array(out, depth);
    if (c == '"') {
      out->kind_ = Json::Kind::kString;
      return String(&out->text_);
    }
    if (Literal("true") || Literal("false")) {
      out->kind_ = Json::Kind::kBool;
      out->bool_ = s_[pos_ - 1] == 'e' && s_[pos_ - 2] == 'u';
      return true;
    }
    if (Literal("null")) {
      out->kind_ = Json::Kind::kNull;
      return true;
    }
    return Number(out);
  }

  bool Number(Json* out) {
    size_t start = pos_;
    bool integral = true;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '.' || c == 'e' || c == 'E') integral = false;
      if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E')) break;
      ++pos_;
    }
    if (pos_ == start) return false;
    out->kind_ = Json::Kind::kNumber;
    out->text_ = s_.substr(start, pos_ - start);
    errno = 0;
    char* end = nullptr;
    out->number_ = std::strtod(out->text_.c_str(), &end);
    if (end != out->text_.c_str() + out->text_.size()) return false;
    if (integral) {
      out->int_ = std::strtoll(out->text_.c_str(), nullptr, 10);
      out->integral_ = errno == 0;
    }
    return true;
  }

  bool Hex4(unsigned* code) {
    if (pos_ + 4 > s_.size()) return false;
    *code = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      unsigned digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                     : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 16;
      if (digit > 15) return false;
      *code = *code * 16 + digit;
    }
    return true;
  }

  static void Utf8(unsigned code, std::string* out) {
    if (code < 0x80) {
      out->push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (code >> 6)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xE0 | (code >> 12)));
      out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  bool Escape(std::string* out) {
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_++];
    switch (c) {
      case '"': case '\\': case '/': out->push_back(c); return true;
      case 'b': out->push_back('\b'); return true;
      case 'f': out->push_back('\f'); return true;
      case 'n': out->push_back('\n'); return true;
      case 'r': out->push_back('\r'); return true;
      case 't': out->push_back('\t'); return true;
      case 'u': {
        unsigned code = 0;
        if (!Hex4(&code)) return false;
        Utf8(code, out);
        return true;
      }
      default: return false;
    }
  }

  bool String(std::string* out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (!Escape(out)) return false;
      } else {
        out->push_back(c);
      }
    }
    return false;
  }

  bool Array(Json* out, int depth) {
    out->kind_ = Json::Kind::kArray;
    ++pos_;
    Skip();
    if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
    while (true) {
      out->items_.emplace_back();
      if (!Value(&out->items_.back(), depth + 1)) return false;
      Skip();
      if (pos_ >= s_.size()) return false;
      char c = s_[pos_++];
      if (c == ']') return true;
      if (c != ',') return false;
    }
  }

  bool Object(Json* out, int depth) {
    out->kind_ = Json::Kind::kObject;
    ++pos_;
    Skip();
    if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
    while (true) {
      Skip();
      if (pos_ >= s_.size() || s_[pos_] != '"') return false;
      out->members_.emplace_back();
      if (!String(&out->members_.back().first)) return false;
      Skip();
      if (pos_ >= s_.size() || s_[pos_++] != ':') return false;
      if (!Value(&out->members_.back().second, depth + 1)) return false;
      Skip();
      if (pos_ >= s_.size()) return false;
      char c = s_[pos_++];
      if (c == '}') return true;
      if (c != ',') return false;
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
};

bool Json::Parse(const std::string& text, Json* out, std::string* error) {
  *out = Json();
  return JsonParser(text).Document(out, error);
}

const Json* Json::Get(const std::string& key) const {
  for (const auto& member : members_) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

std::string Json::String(const std::string& key, const std::string& fallback) const {
  const Json* value = Get(key);
  return (value != nullptr && value->kind_ == Kind::kString) ? value->text_ : fallback;
}

bool Json::AsInt(int64_t* out) const {
  if (kind_ == Kind::kNumber && integral_) {
    *out = int_;
    return true;
  }
  if (kind_ != Kind::kString || text_.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(text_.c_str(), &end, 10);
  if (errno != 0 || end != text_.c_str() + text_.size()) return false;
  *out = value;
  return true;
}

bool Json::AsDouble(double* out) const {
  if (kind_ != Kind::kNumber) return false;
  *out = number_;
  return true;
}

bool Json::Int(const std::string& key, int64_t* out) const {
  const Json* value = Get(key);
  return value != nullptr && value->AsInt(out);
}

}  // namespace tritonstack
