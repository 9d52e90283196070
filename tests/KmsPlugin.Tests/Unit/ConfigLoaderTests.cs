using KmsPlugin.Configuration;
using KmsPlugin.Configuration.Providers;

namespace KmsPlugin.Tests.Unit;

public sealed class ConfigLoaderTests
{
    private const string Full = """
        listen: unix:///var/run/kmsplugin/kms.sock
        statusVersion: v2beta1
        socketGroup: kube
        kek: { maxUses: 1000, maxAge: 24h, cacheSize: 50 }
        rootKeys:
          - name: hsm
            provider: pkcs11
            pkcs11: { library: /usr/lib/softhsm/libsofthsm2.so, tokenLabel: kms, keyLabel: kek1, pinFile: /etc/kms-plugin/pin }
          - name: dev
            provider: local
            local: { keyFile: root.key, create: true }
        health: { listen: 127.0.0.1:8787, probeInterval: 1m }
        logging: { format: json, level: debug }
        rootKeyTimeout: 5s
        """;

    [Fact]
    public void The_documented_example_parses_with_every_field()
    {
        var config = ConfigLoader.Parse(Full, "/etc/kms-plugin");
        Assert.Equal("/var/run/kmsplugin/kms.sock", config.SocketPath);
        Assert.Equal("v2beta1", config.StatusVersion);
        Assert.Equal("kube", config.SocketGroup);
        Assert.Equal(1000, config.Kek.MaxUses);
        Assert.Equal(TimeSpan.FromHours(24), config.Kek.MaxAge);
        Assert.Equal(50, config.Kek.CacheSize);
        Assert.Equal(["hsm", "dev"], config.RootKeys.Select(k => k.Name));
        Assert.Equal("kek1", config.RootKeys[0].SettingsAs<Pkcs11RootKeyConfig>().KeyLabel);
        Assert.Equal(4, config.RootKeys[0].SettingsAs<Pkcs11RootKeyConfig>().SessionPoolSize);
        Assert.Equal("/etc/kms-plugin/root.key", config.RootKeys[1].SettingsAs<LocalRootKeyConfig>().KeyFile);
        Assert.True(config.RootKeys[1].SettingsAs<LocalRootKeyConfig>().Create);
        Assert.Equal("127.0.0.1", config.Health.ListenHost);
        Assert.Equal(8787, config.Health.ListenPort);
        Assert.Equal(TimeSpan.FromMinutes(1), config.Health.ProbeInterval);
        Assert.Equal("json", config.Logging.Format);
        Assert.Equal(TimeSpan.FromSeconds(5), config.RootKeyTimeout);
    }

    [Fact]
    public void The_repository_example_config_is_valid()
    {
        var path = Path.Combine(TestSupport.RepositoryRoot.Path, "docs", "kms-plugin.example.yaml");
        var config = ConfigLoader.LoadFile(path);
        Assert.NotEmpty(config.RootKeys);
    }

    [Fact]
    public void Defaults_follow_the_reference_hierarchy()
    {
        var config = ConfigLoader.Parse("listen: unix:///run/k.sock\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "/");
        Assert.Equal("v2", config.StatusVersion);
        Assert.Equal(1L << 21, config.Kek.MaxUses);
        Assert.Equal(TimeSpan.FromDays(7), config.Kek.MaxAge);
        Assert.Equal(1000, config.Kek.CacheSize);
        Assert.Null(config.Health.ListenHost);
        Assert.False(config.RootKeys[0].SettingsAs<LocalRootKeyConfig>().Create);
    }

    [Theory]
    [InlineData("rootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "listen")]
    [InlineData("listen: /run/k.sock\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "listen")]
    [InlineData("listen: unix://run/k.sock\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "listen")]
    [InlineData("listen: unix:///@abstract\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "listen")]
    [InlineData("listen: unix:///run/k.sock", "rootKeys")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: []", "rootKeys")]
    [InlineData("listen: unix:///run/k.sock\nstatusVersion: v1\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "statusVersion")]
    [InlineData("listen: unix:///run/k.sock\nkek: { maxUses: 0 }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "kek.maxUses")]
    [InlineData("listen: unix:///run/k.sock\nkek: { maxUses: 268435457 }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "kek.maxUses")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: dev, provider: local, role: decrypt-only, local: { keyFile: /k } }]", "rootKeys[0].role")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: local, local: { keyFile: /a } }, { name: b, provider: local, role: primary, local: { keyFile: /b } }]", "rootKeys[1].role")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: local, local: { keyFile: /a } }, { name: b, provider: local, role: escrow, local: { keyFile: /b } }]", "rootKeys[1].role")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: p, provider: local, local: { keyFile: /p } }, { name: a1, provider: local, role: additional-wrap, local: { keyFile: /1 } }, { name: a2, provider: local, role: additional-wrap, local: { keyFile: /2 } }, { name: a3, provider: local, role: additional-wrap, local: { keyFile: /3 } }, { name: a4, provider: local, role: additional-wrap, local: { keyFile: /4 } }, { name: a5, provider: local, role: additional-wrap, local: { keyFile: /5 } }, { name: a6, provider: local, role: additional-wrap, local: { keyFile: /6 } }, { name: a7, provider: local, role: additional-wrap, local: { keyFile: /7 } }, { name: a8, provider: local, role: additional-wrap, local: { keyFile: /8 } }]", "rootKeys")]
    [InlineData("listen: unix:///run/k.sock\nrotation: { stableProbes: 0 }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "rotation.stableProbes")]
    [InlineData("listen: unix:///run/k.sock\nreload: { pollInterval: 10ms }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "reload.pollInterval")]
    [InlineData("listen: unix:///run/k.sock\nkek: { maxUses: lots }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "kek.maxUses")]
    [InlineData("listen: unix:///run/k.sock\nkek: { maxAge: 7d }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "kek.maxAge")]
    [InlineData("listen: unix:///run/k.sock\nkek: { maxAge: 2400h }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "kek.maxAge")]
    [InlineData("listen: unix:///run/k.sock\nkek: { cacheSize: 0 }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "kek.cacheSize")]
    [InlineData("listen: unix:///run/k.sock\nkek: { maxUse: 5 }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "kek.maxUse")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ provider: local, local: { keyFile: /k } }]", "rootKeys[0].name")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: Dev, provider: local, local: { keyFile: /k } }]", "rootKeys[0].name")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: local, local: { keyFile: /k } }, { name: a, provider: local, local: { keyFile: /j } }]", "rootKeys[1].name")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: cloud9 }]", "rootKeys[0].provider")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: local }]", "rootKeys[0].local")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: local, local: { create: true } }]", "rootKeys[0].local.keyFile")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: local, local: { keyFile: /k, create: yes please } }]", "rootKeys[0].local.create")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: local, local: { keyFile: /k }, pkcs11: { library: /x } }]", "rootKeys[0].pkcs11")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: pkcs11, pkcs11: { library: libsofthsm2.so, tokenLabel: t, keyLabel: k, pinFile: /p } }]", "rootKeys[0].pkcs11.library")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: pkcs11, pkcs11: { library: /l.so, keyLabel: k, pinFile: /p } }]", "rootKeys[0].pkcs11.tokenLabel")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: pkcs11, pkcs11: { library: /l.so, tokenLabel: t, pinFile: /p } }]", "rootKeys[0].pkcs11.keyLabel")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: pkcs11, pkcs11: { library: /l.so, tokenLabel: t, keyId: xyz, pinFile: /p } }]", "rootKeys[0].pkcs11.keyId")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: pkcs11, pkcs11: { library: /l.so, tokenLabel: t, keyLabel: k } }]", "rootKeys[0].pkcs11.pinFile")]
    [InlineData("listen: unix:///run/k.sock\nrootKeys: [{ name: a, provider: pkcs11, pkcs11: { library: /l.so, tokenLabel: t, keyLabel: k, pin: '1234', pinFile: /p } }]", "rootKeys[0].pkcs11.pin")]
    [InlineData("listen: unix:///run/k.sock\nhealth: { listen: 0.0.0.0:8787 }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "health.listen")]
    [InlineData("listen: unix:///run/k.sock\nhealth: { listen: 8787 }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "health.listen")]
    [InlineData("listen: unix:///run/k.sock\nhealth: { probeInterval: 1s }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "health.probeInterval")]
    [InlineData("listen: unix:///run/k.sock\nlogging: { format: xml }\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "logging.format")]
    [InlineData("listen: [unix:///run/k.sock]\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "listen")]
    [InlineData("listen: unix:///run/k.sock\nrootkeys: []", "rootkeys")]
    public void A_bad_value_is_rejected_naming_its_field(string yaml, string field)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "/"));
        Assert.Equal(field, error.Field);
        Assert.StartsWith(field + ": ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_socket_path_longer_than_sun_path_is_rejected()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.ParseListen("listen", "unix:///" + new string('a', 120)));
        Assert.Contains("107 bytes", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_yaml_names_the_line()
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("listen: unix:///run/k.sock\nrootKeys: [\n  - }", "/"));
        Assert.StartsWith("line ", error.Field, StringComparison.Ordinal);
    }

    [Fact]
    public void The_listen_override_replaces_the_configured_socket()
    {
        var config = ConfigLoader.Parse("listen: unix:///run/k.sock\nrootKeys: [{ name: dev, provider: local, local: { keyFile: /k } }]", "/", "unix:///tmp/other.sock");
        Assert.Equal("/tmp/other.sock", config.SocketPath);
    }
}
