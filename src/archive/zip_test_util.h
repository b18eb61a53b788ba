// Shared by the archive part's tests (zip_layout_test.cc, zip_unpack_test.cc,
// zip_write_test.cc, zip_corpus_test.cc): a fixture with its own temporary
// folder, and zips made with libzip or byte by byte.
#pragma once

#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace cw::zip_test {

namespace fs = std::filesystem;

struct Entry {
  std::string name;
  std::string content;
  bool is_dir = false;
  // Unix file type and permission bits; 0 leaves libzip's default attributes.
  mode_t unix_mode = 0;
  bool dos = false;  // recorded as made on MS-DOS/Windows
};

class ZipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "cw_zip_test_XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    // Undo read-only modes some tests set, so the cleanup can proceed.
    for (auto it = fs::recursive_directory_iterator(root_, ec); it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_symlink()) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(root_, ec);
  }

  static void WriteFile(const fs::path& path, const std::string& content) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << content;
  }

  static std::string ReadFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  static mode_t Mode(const fs::path& path) {
    struct stat st;
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  // Builds a zip with libzip directly, so names and attributes can be anything.
  static void MakeZip(const fs::path& path, const std::vector<Entry>& entries) {
    int err = 0;
    zip_t* za = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
    ASSERT_NE(za, nullptr) << err;
    for (const Entry& e : entries) {
      zip_int64_t index;
      if (e.is_dir) {
        index = zip_dir_add(za, e.name.c_str(), 0);
      } else {
        zip_source_t* src = zip_source_buffer(za, e.content.data(), e.content.size(), 0);
        ASSERT_NE(src, nullptr);
        index = zip_file_add(za, e.name.c_str(), src, 0);
        if (index < 0) zip_source_free(src);
      }
      ASSERT_GE(index, 0) << e.name << ": " << zip_strerror(za);
      if (e.dos) {
        ASSERT_EQ(zip_file_set_external_attributes(za, index, 0, ZIP_OPSYS_DOS, 0), 0);
      } else if (e.unix_mode != 0) {
        ASSERT_EQ(zip_file_set_external_attributes(za, index, 0, ZIP_OPSYS_UNIX,
                                                   static_cast<zip_uint32_t>(e.unix_mode) << 16),
                  0);
      }
    }
    ASSERT_EQ(zip_close(za), 0) << zip_strerror(za);
  }

  // Every path under `dir`, relative, sorted.
  static std::vector<std::string> Listing(const fs::path& dir) {
    std::vector<std::string> out;
    if (!fs::exists(dir)) return out;
    for (auto& e : fs::recursive_directory_iterator(dir)) {
      out.push_back(fs::relative(e.path(), dir).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path root_;
};

// ---- Zips written byte by byte --------------------------------------------

inline void Put16(std::string& s, std::uint32_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>((v >> 8) & 0xff));
}
inline void Put32(std::string& s, std::uint32_t v) {
  Put16(s, v & 0xffff);
  Put16(s, v >> 16);
}
inline void Put64(std::string& s, std::uint64_t v) {
  Put32(s, static_cast<std::uint32_t>(v));
  Put32(s, static_cast<std::uint32_t>(v >> 32));
}
inline void Set32(std::string& s, std::size_t at, std::uint32_t v) {
  std::string le;
  Put32(le, v);
  s.replace(at, 4, le);
}
inline std::uint32_t Crc32(const std::string& data) {
  std::uint32_t crc = 0xffffffffu;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}
// Offsets of every central directory header ("PK\1\2") in a zip's bytes.
inline std::vector<std::size_t> CentralHeaders(const std::string& zip) {
  std::vector<std::size_t> out;
  for (std::size_t at = zip.find("PK\1\2"); at != std::string::npos; at = zip.find("PK\1\2", at + 1)) {
    out.push_back(at);
  }
  return out;
}

struct RawEntry {
  std::string name;
  std::string data;
  bool descriptor = false;  // sizes and CRC in a data descriptor after the data (flag bit 3)
};

// A zip of stored entries written byte by byte, so that the layout can be
// anything. `aliases` adds central directory entries, each a copy of the
// entry with that index under another name, pointing to the same local header.
// `zip64` writes the ZIP64 end records and puts every local header offset in
// a ZIP64 extra field, as writers do for big archives.
inline std::string StoredZip(const std::vector<RawEntry>& entries,
                             const std::vector<std::pair<std::size_t, std::string>>& aliases = {},
                             bool zip64 = false) {
  std::string out;
  std::vector<std::string> central;
  for (const RawEntry& e : entries) {
    std::uint32_t offset = static_cast<std::uint32_t>(out.size());
    std::uint32_t crc = Crc32(e.data);
    std::uint32_t size = static_cast<std::uint32_t>(e.data.size());
    std::uint16_t flags = e.descriptor ? 8 : 0;
    out += "PK\3\4";
    Put16(out, 10);
    Put16(out, flags);
    Put16(out, 0);  // stored
    Put32(out, 0);  // time, date
    Put32(out, e.descriptor ? 0 : crc);
    Put32(out, e.descriptor ? 0 : size);
    Put32(out, e.descriptor ? 0 : size);
    Put16(out, static_cast<std::uint32_t>(e.name.size()));
    Put16(out, 0);
    out += e.name + e.data;
    if (e.descriptor) {
      out += "PK\7\10";
      Put32(out, crc);
      Put32(out, size);
      Put32(out, size);
    }
    std::string c = "PK\1\2";
    Put16(c, 0x031e);  // made on Unix
    Put16(c, 10);
    Put16(c, flags);
    Put16(c, 0);
    Put32(c, 0);
    Put32(c, crc);
    Put32(c, size);
    Put32(c, size);
    Put16(c, static_cast<std::uint32_t>(e.name.size()));
    Put16(c, zip64 ? 12 : 0);  // extra length
    Put16(c, 0);
    Put16(c, 0);
    Put16(c, 0);
    Put32(c, static_cast<std::uint32_t>(S_IFREG | 0644) << 16);
    Put32(c, zip64 ? 0xffffffffu : offset);
    c += e.name;
    if (zip64) {
      Put16(c, 1);
      Put16(c, 8);
      Put64(c, offset);
    }
    central.push_back(c);
  }
  for (const auto& [index, name] : aliases) {
    const std::string& of = central[index];
    std::size_t old_name = static_cast<std::uint8_t>(of[28]);
    std::string c = of.substr(0, 46) + name + of.substr(46 + old_name);
    c[28] = static_cast<char>(name.size());  // name length (names under 256 bytes)
    c[29] = 0;
    central.push_back(c);
  }
  std::uint32_t cd_offset = static_cast<std::uint32_t>(out.size());
  for (const std::string& c : central) out += c;
  std::uint32_t cd_size = static_cast<std::uint32_t>(out.size()) - cd_offset;
  if (zip64) {
    std::uint64_t record = out.size();
    out += "PK\6\6";
    Put64(out, 44);
    Put16(out, 45);
    Put16(out, 45);
    Put32(out, 0);
    Put32(out, 0);
    Put64(out, central.size());
    Put64(out, central.size());
    Put64(out, cd_size);
    Put64(out, cd_offset);
    out += "PK\6\7";
    Put32(out, 0);
    Put64(out, record);
    Put32(out, 1);
    out += "PK\5\6";
    Put32(out, 0);
    Put16(out, 0xffff);
    Put16(out, 0xffff);
    Put32(out, 0xffffffffu);
    Put32(out, 0xffffffffu);
    Put16(out, 0);
    return out;
  }
  out += "PK\5\6";
  Put32(out, 0);
  Put16(out, static_cast<std::uint32_t>(central.size()));
  Put16(out, static_cast<std::uint32_t>(central.size()));
  Put32(out, cd_size);
  Put32(out, cd_offset);
  Put16(out, 0);
  return out;
}

}  // namespace cw::zip_test
