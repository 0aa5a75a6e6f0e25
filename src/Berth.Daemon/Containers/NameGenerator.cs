using System.Security.Cryptography;

namespace Berth.Daemon.Containers;

/// <summary>Docker-style random names (<c>adjective_surname</c>), with a digit appended on a clash.</summary>
public static class NameGenerator
{
    private static readonly string[] Left =
    [
        "admiring", "agitated", "amazing", "angry", "awesome", "blissful", "bold", "brave", "busy", "charming", "clever",
        "compassionate", "competent", "confident", "cool", "dazzling", "determined", "eager", "ecstatic", "elastic",
        "elegant", "epic", "exciting", "fervent", "focused", "friendly", "gallant", "gifted", "goofy", "gracious",
        "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring", "jolly", "keen", "kind",
        "laughing", "loving", "lucid", "magical", "modest", "musing", "nervous", "nice", "nostalgic", "objective",
        "optimistic", "peaceful", "pensive", "practical", "priceless", "quirky", "quizzical", "relaxed", "reverent",
        "romantic", "serene", "sharp", "silly", "sleepy", "stoic", "strange", "sweet", "tender", "thirsty", "trusting",
        "upbeat", "vibrant", "vigilant", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen",
    ];

    private static readonly string[] Right =
    [
        "agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "babbage", "banach", "bardeen", "bartik",
        "bell", "bhabha", "blackwell", "bohr", "booth", "borg", "bose", "brattain", "brown", "carson", "cerf", "chandrasekhar",
        "curie", "darwin", "davinci", "dijkstra", "easley", "einstein", "elion", "engelbart", "euclid", "euler", "fermat",
        "fermi", "feynman", "franklin", "galileo", "gauss", "goldberg", "goodall", "hamilton", "hawking", "heisenberg",
        "hopper", "hypatia", "johnson", "kapitsa", "keller", "kepler", "knuth", "lamarr", "leakey", "lovelace", "lumiere",
        "mayer", "mccarthy", "mcclintock", "meitner", "mendel", "morse", "newton", "noether", "pascal", "pasteur", "perlman",
        "pike", "poincare", "ritchie", "shannon", "shockley", "sinoussi", "stonebraker", "swartz", "tesla", "thompson",
        "torvalds", "turing", "varahamihira", "villani", "wiles", "williams", "wozniak", "wright", "yalow", "zhukovsky",
    ];

    public static string Generate(Func<string, bool> taken)
    {
        for (int attempt = 0; ; attempt++)
        {
            string name = Left[RandomNumberGenerator.GetInt32(Left.Length)] + "_" + Right[RandomNumberGenerator.GetInt32(Right.Length)];
            if (attempt > 0) name += RandomNumberGenerator.GetInt32(10).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!taken(name)) return name;
        }
    }
}
