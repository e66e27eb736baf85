#include "duet/data/idx_write.h"

#include "duet/io/atomic_file.h"
#include "duet/tensor/error.h"

namespace duet::data {

void write_idx_file(const std::string& path, const std::vector<int64_t>& dims,
                    std::span<const uint8_t> data) {
  DUET_CHECK(dims.size() >= 1 && dims.size() <= 4, path, ": rank: ", dims.size(),
             " dimensions; IDX files here have 1 to 4");
  std::vector<unsigned char> header = {0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  uint64_t count = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = dims[i];
    DUET_CHECK(d >= 1 && d <= 0xFFFFFFFFll, path, ": dimension ", i, " is ", d,
               "; expected 1 to 2^32 - 1");
    // The same bound the reader applies, so everything written here can be read back.
    DUET_CHECK(count <= (uint64_t{1} << 48) / static_cast<uint64_t>(d), path,
               ": dimensions overflow the element count at dimension ", i);
    count *= static_cast<uint64_t>(d);
    for (int s = 24; s >= 0; s -= 8) header.push_back(static_cast<unsigned char>(d >> s));
  }
  DUET_CHECK(count == data.size(), path, ": the dimensions hold ", count, " bytes but ",
             data.size(), " were given");
  io::AtomicFileWriter out(path);  // throws naming the path when the folder is not writable
  out.write(header.data(), header.size());
  out.write(data.data(), data.size());
  out.commit();
}

void write_idx_dataset(const Dataset& d, const std::string& images_path,
                       const std::string& labels_path) {
  validate(d, images_path);
  DUET_CHECK(d.channels == 1, images_path, ": IDX image files hold one channel, the data set has ",
             d.channels);
  DUET_CHECK(d.num_classes() <= 256, labels_path, ": ", d.num_classes(),
             " classes do not fit in the byte labels of an IDX file");
  std::vector<uint8_t> labels(static_cast<size_t>(d.size()));
  for (int64_t i = 0; i < d.size(); ++i)
    labels[static_cast<size_t>(i)] = static_cast<uint8_t>(d.label(i));
  write_idx_file(
      images_path, {d.size(), d.height, d.width},
      std::span<const uint8_t>(d.images.data<uint8_t>(), static_cast<size_t>(d.images.nbytes())));
  write_idx_file(labels_path, {d.size()}, labels);
}

}  // namespace duet::data
