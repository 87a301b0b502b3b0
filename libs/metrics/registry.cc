#include "libs/metrics/registry.h"

#include <cmath>
#include <set>
#include <utility>

#include "libs/metrics/text_format.h"

namespace sb::metrics {
namespace {

// A family of one unlabelled sample whose value is read when rendered.
class CallbackFamily final : public MetricFamily {
 public:
  CallbackFamily(std::string name, std::string help, MetricType type, std::function<double()> read)
      : MetricFamily(std::move(name), std::move(help), type, {}), read_(std::move(read)) {}

  void AppendSamples(std::string& out) const override {
    out += name();
    out += ' ';
    AppendValue(read_(), out);
    out += '\n';
  }

 private:
  const std::function<double()> read_;
};

// Built by appending: GCC 12's -Wrestrict misfires on `"\"" + std::string(...)` at -O2.
std::string Quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  out.append(text);
  out.push_back('"');
  return out;
}

std::string JoinLabels(const std::vector<std::string>& label_names) {
  std::string out = "{";
  for (size_t i = 0; i < label_names.size(); ++i) {
    if (i > 0) out += ", ";
    out += label_names[i];
  }
  return out + "}";
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

absl::Status ValidateNames(MetricType type, std::string_view name, std::string_view help,
                           const std::vector<std::string>& label_names) {
  if (!IsValidMetricName(name)) {
    return absl::InvalidArgumentError("metric name " + Quoted(name) +
                                      " must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  if (type == MetricType::kCounter && (!EndsWith(name, "_total") || name == "_total")) {
    return absl::InvalidArgumentError("counter name " + Quoted(name) + " must end in _total");
  }
  if (help.empty()) {
    return absl::InvalidArgumentError("metric " + Quoted(name) + " needs help text");
  }
  if (!IsValidUtf8(help)) {
    return absl::InvalidArgumentError("help text of metric " + Quoted(name) +
                                      " is not valid UTF-8");
  }
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label)) {
      return absl::InvalidArgumentError("label name " + Quoted(label) + " of metric " +
                                        Quoted(name) +
                                        " must match [a-zA-Z_][a-zA-Z0-9_]* without a leading __");
    }
    if (type == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError("histogram " + Quoted(name) +
                                        " cannot have a label named le: its buckets use it");
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError("label name " + Quoted(label) +
                                        " appears twice in metric " + Quoted(name));
    }
  }
  return absl::OkStatus();
}

// Drops a trailing +Inf and checks that the rest is finite and strictly increasing.
absl::StatusOr<std::vector<double>> NormalizeBuckets(std::string_view name,
                                                     std::vector<double> upper_bounds) {
  if (!upper_bounds.empty() && std::isinf(upper_bounds.back()) && upper_bounds.back() > 0) {
    upper_bounds.pop_back();
  }
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i])) {
      return absl::InvalidArgumentError("histogram " + Quoted(name) + " bucket bound " +
                                        FormatValue(upper_bounds[i]) +
                                        " is not finite (+Inf is implied last)");
    }
    if (i > 0 && !(upper_bounds[i - 1] < upper_bounds[i])) {
      return absl::InvalidArgumentError(
          "histogram " + Quoted(name) + " bucket bounds must be strictly increasing, got " +
          FormatValue(upper_bounds[i - 1]) + " then " + FormatValue(upper_bounds[i]));
    }
  }
  return upper_bounds;
}

// The sample names a family writes: histograms write three, the others their own name.
std::vector<std::string> SampleNames(MetricType type, std::string_view name) {
  if (type == MetricType::kHistogram) {
    const std::string base(name);
    return {base + "_bucket", base + "_sum", base + "_count"};
  }
  return {std::string(name)};
}

}  // namespace

MetricType Registry::TypeOf(Kind kind) {
  switch (kind) {
    case Kind::kCounter:
    case Kind::kCallbackCounter:
      return MetricType::kCounter;
    case Kind::kGauge:
    case Kind::kCallbackGauge:
      return MetricType::kGauge;
    case Kind::kHistogram:
      return MetricType::kHistogram;
  }
  return MetricType::kGauge;
}

bool Registry::IsCallback(Kind kind) {
  return kind == Kind::kCallbackCounter || kind == Kind::kCallbackGauge;
}

absl::StatusOr<MetricFamily*> Registry::Add(
    Kind kind, std::string_view name, std::string_view help,
    const std::vector<std::string>& label_names, const std::vector<double>& upper_bounds,
    const std::function<std::unique_ptr<MetricFamily>()>& make) {
  const MetricType type = TypeOf(kind);
  if (absl::Status status = ValidateNames(type, name, help, label_names); !status.ok()) {
    return status;
  }
  const bool is_callback = IsCallback(kind);

  absl::MutexLock lock(&mu_);
  if (auto it = families_.find(name); it != families_.end()) {
    const Entry& entry = it->second;
    const MetricFamily& existing = *entry.family;
    if (!is_callback && entry.kind == kind && existing.help() == help &&
        existing.label_names() == label_names && entry.upper_bounds == upper_bounds) {
      return entry.family.get();
    }
    const bool existing_is_callback = IsCallback(entry.kind);
    return absl::AlreadyExistsError(
        "metric " + Quoted(name) + " is already registered as a " +
        (existing_is_callback ? "callback " : "") + MetricTypeName(existing.type()) +
        " with labels " + JoinLabels(existing.label_names()) +
        (is_callback || existing_is_callback ? "" : " (help and buckets must match too)"));
  }
  const std::vector<std::string> new_samples = SampleNames(type, name);
  for (const auto& [other_name, other] : families_) {
    for (const std::string& other_sample : SampleNames(other.family->type(), other_name)) {
      for (const std::string& sample : new_samples) {
        if (sample == other_sample) {
          return absl::AlreadyExistsError("metric " + Quoted(name) + " would write samples named " +
                                          Quoted(sample) + ", as metric " + Quoted(other_name) +
                                          " does");
        }
      }
    }
  }
  Entry& entry = families_[std::string(name)];
  entry.kind = kind;
  entry.upper_bounds = upper_bounds;
  entry.family = make();
  return entry.family.get();
}

absl::StatusOr<CounterFamily*> Registry::AddCounter(std::string_view name, std::string_view help,
                                                    std::vector<std::string> label_names) {
  const auto make = [&]() -> std::unique_ptr<MetricFamily> {
    auto family =
        std::make_unique<CounterFamily>(std::string(name), std::string(help), MetricType::kCounter,
                                        label_names, [] { return std::make_unique<Counter>(); });
    if (label_names.empty()) family->WithLabels({});
    return family;
  };
  absl::StatusOr<MetricFamily*> family = Add(Kind::kCounter, name, help, label_names, {}, make);
  if (!family.ok()) return family.status();
  return static_cast<CounterFamily*>(*family);
}

absl::StatusOr<GaugeFamily*> Registry::AddGauge(std::string_view name, std::string_view help,
                                                std::vector<std::string> label_names) {
  const auto make = [&]() -> std::unique_ptr<MetricFamily> {
    auto family =
        std::make_unique<GaugeFamily>(std::string(name), std::string(help), MetricType::kGauge,
                                      label_names, [] { return std::make_unique<Gauge>(); });
    if (label_names.empty()) family->WithLabels({});
    return family;
  };
  absl::StatusOr<MetricFamily*> family = Add(Kind::kGauge, name, help, label_names, {}, make);
  if (!family.ok()) return family.status();
  return static_cast<GaugeFamily*>(*family);
}

absl::StatusOr<HistogramFamily*> Registry::AddHistogram(std::string_view name,
                                                        std::string_view help,
                                                        std::vector<double> upper_bounds,
                                                        std::vector<std::string> label_names) {
  absl::StatusOr<std::vector<double>> bounds = NormalizeBuckets(name, std::move(upper_bounds));
  if (!bounds.ok()) return bounds.status();
  const auto make = [&]() -> std::unique_ptr<MetricFamily> {
    auto shared_bounds = std::make_shared<const std::vector<double>>(*bounds);
    auto family = std::make_unique<HistogramFamily>(
        std::string(name), std::string(help), MetricType::kHistogram, label_names,
        [shared_bounds] { return std::make_unique<Histogram>(shared_bounds); });
    if (label_names.empty()) family->WithLabels({});
    return family;
  };
  absl::StatusOr<MetricFamily*> family =
      Add(Kind::kHistogram, name, help, label_names, *bounds, make);
  if (!family.ok()) return family.status();
  return static_cast<HistogramFamily*>(*family);
}

absl::Status Registry::AddCallback(Kind kind, std::string_view name, std::string_view help,
                                   std::function<double()> read) {
  const MetricType type = TypeOf(kind);
  const auto make = [&]() -> std::unique_ptr<MetricFamily> {
    return std::make_unique<CallbackFamily>(std::string(name), std::string(help), type,
                                            std::move(read));
  };
  return Add(kind, name, help, {}, {}, make).status();
}

absl::Status Registry::AddCallbackGauge(std::string_view name, std::string_view help,
                                        std::function<double()> read) {
  return AddCallback(Kind::kCallbackGauge, name, help, std::move(read));
}

absl::Status Registry::AddCallbackCounter(std::string_view name, std::string_view help,
                                          std::function<double()> read) {
  return AddCallback(Kind::kCallbackCounter, name, help, std::move(read));
}

std::string Registry::Render() const {
  // Families are never removed, so the pointers stay valid after the lock is released; rendering
  // without it lets callbacks use the registry and keeps registration from waiting on a scrape.
  std::vector<const MetricFamily*> families;
  {
    absl::MutexLock lock(&mu_);
    families.reserve(families_.size());
    for (const auto& [name, entry] : families_) families.push_back(entry.family.get());
  }
  std::string out;
  std::string samples;
  for (const MetricFamily* family : families) {
    samples.clear();
    family->AppendSamples(samples);
    if (samples.empty()) continue;
    out += "# HELP ";
    out += family->name();
    out += ' ';
    AppendEscapedHelp(family->help(), out);
    out += "\n# TYPE ";
    out += family->name();
    out += ' ';
    out += MetricTypeName(family->type());
    out += '\n';
    out += samples;
  }
  return out;
}

}  // namespace sb::metrics
