#include "libs/metrics/family.h"

#include <charconv>
#include <utility>

#include "libs/common/check.h"
#include "libs/metrics/text_format.h"

namespace sb::metrics {
namespace {

// Appends one sample line: name+suffix{labels...[,extra_label="extra_value"]} value
void AppendSampleLine(std::string_view name, std::string_view suffix,
                      const std::vector<std::string>& label_names,
                      const std::vector<std::string>& label_values, std::string_view extra_label,
                      std::string_view extra_value, std::string_view value, std::string& out) {
  out.append(name);
  out.append(suffix);
  if (!label_names.empty() || !extra_label.empty()) {
    out += '{';
    bool first = true;
    const auto append_label = [&](std::string_view label, std::string_view label_value) {
      if (!first) out += ',';
      first = false;
      out.append(label);
      out += "=\"";
      AppendEscapedLabelValue(label_value, out);
      out += '"';
    };
    for (size_t i = 0; i < label_names.size(); ++i) append_label(label_names[i], label_values[i]);
    if (!extra_label.empty()) append_label(extra_label, extra_value);
    out += '}';
  }
  out += ' ';
  out.append(value);
  out += '\n';
}

std::string FormatCount(uint64_t count) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, count);
  SB_CHECK(ec == std::errc());
  return std::string(buf, end);
}

void AppendChild(const MetricFamily& family, const std::vector<std::string>& values,
                 const Counter& counter, std::string& out) {
  AppendSampleLine(family.name(), "", family.label_names(), values, "", "",
                   FormatValue(counter.Value()), out);
}

void AppendChild(const MetricFamily& family, const std::vector<std::string>& values,
                 const Gauge& gauge, std::string& out) {
  AppendSampleLine(family.name(), "", family.label_names(), values, "", "",
                   FormatValue(gauge.Value()), out);
}

void AppendChild(const MetricFamily& family, const std::vector<std::string>& values,
                 const Histogram& histogram, std::string& out) {
  const HistogramSnapshot snapshot = histogram.Snapshot();
  for (size_t i = 0; i < snapshot.cumulative_counts.size(); ++i) {
    const std::string le = i < snapshot.upper_bounds.size() ? FormatValue(snapshot.upper_bounds[i])
                                                            : std::string("+Inf");
    AppendSampleLine(family.name(), "_bucket", family.label_names(), values, "le", le,
                     FormatCount(snapshot.cumulative_counts[i]), out);
  }
  AppendSampleLine(family.name(), "_sum", family.label_names(), values, "", "",
                   FormatValue(snapshot.sum), out);
  AppendSampleLine(family.name(), "_count", family.label_names(), values, "", "",
                   FormatCount(snapshot.count), out);
}

}  // namespace

const char* MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

template <typename T>
Family<T>::Family(std::string name, std::string help, MetricType type,
                  std::vector<std::string> label_names,
                  std::function<std::unique_ptr<T>()> new_child)
    : MetricFamily(std::move(name), std::move(help), type, std::move(label_names)),
      new_child_(std::move(new_child)) {}

template <typename T>
T& Family<T>::WithLabels(absl::Span<const std::string_view> values) {
  SB_CHECK(values.size() == label_names().size())
      << "metric " << name() << " has " << label_names().size() << " label(s), got "
      << values.size() << " value(s)";
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = children_.find(values); it != children_.end()) return *it->second;
  }
  std::vector<std::string> key;
  key.reserve(values.size());
  for (const std::string_view value : values) key.push_back(SanitizeUtf8(value));
  absl::MutexLock lock(&mu_);
  // Another thread may have created the child between the two locks: try_emplace keeps theirs.
  auto [it, inserted] = children_.try_emplace(std::move(key));
  if (inserted) it->second = new_child_();
  return *it->second;
}

template <typename T>
void Family<T>::AppendSamples(std::string& out) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [values, child] : children_) AppendChild(*this, values, *child, out);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

}  // namespace sb::metrics
